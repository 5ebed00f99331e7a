"""The physics audit passes a correct model and flags a broken one."""

import torch

from equiformer_lite.data import keys
from equiformer_lite.models import SE3Potential
from equiformer_lite.testing import audit, format_audit, nve_step_scaling
from tests.conftest import diamond, ethanol, small_model


def test_audit_passes_a_correct_model_in_both_dtypes(dtype):
    # The NVE check runs on a float64 copy either way: once (float64) is enough.
    rows = audit(small_model(dtype), [ethanol(), diamond()], n_trials=2, molecular_dynamics=dtype == torch.float64)
    table = format_audit(rows)
    print(table)
    assert all(r.passed for r in rows), table
    checks = {r.check for r in rows}
    for expected in ("forces vs finite differences", "stress vs finite differences", "2x2x2 supercell energy",
                     "equivalent cell stress", "wrap atoms forces", "energy jump at r_c (eV)"):
        assert expected in checks
    assert any(c.startswith("Verlet dt^2 scaling") for c in checks) == (dtype == torch.float64)
    assert table.splitlines()[-1].endswith("0 failed")


def test_audit_flags_a_model_with_wrong_stress_sign():
    class WrongStress(SE3Potential):
        def forward(self, data, **kwargs):
            out = super().forward(data, **kwargs)
            if keys.STRESS in out:
                out[keys.STRESS] = -out[keys.STRESS]
            return out

    torch.manual_seed(0)
    model = WrongStress(["C"], cutoff=4.0, channels=8, num_heads=2, num_layers=1).double()
    rows = audit(model, [diamond()], n_trials=1)
    failed = {r.check for r in rows if not r.passed}
    assert failed == {"stress vs finite differences"}


def test_nve_check_catches_a_discontinuous_energy():
    """Energy steps that the forces cannot see (a staircase in one bond length) break Verlet's
    dt^2 scaling: the check that caught the thesis' non-smooth norm nonlinearity fails here."""

    class Staircase(SE3Potential):
        def forward(self, data, **kwargs):
            out = super().forward(data, **kwargs)
            r01 = (data[keys.POSITIONS][0] - data[keys.POSITIONS][1]).norm()
            out[keys.ENERGY] = out[keys.ENERGY] + 0.02 * torch.floor(r01 / 0.002).detach()
            return out

    torch.manual_seed(0)
    model = Staircase(["H", "C", "O"], cutoff=4.0, channels=8, num_heads=2, num_layers=1, dtype=torch.float64)
    nve = nve_step_scaling(model, ethanol(), duration_fs=10.0)
    assert not 3.0 < nve["ratio"] < 5.0, nve
