"""Radial basis and the cutoff envelope: values and derivatives at the cutoff."""

import pytest
import torch

from equiformer_lite.nn import BesselBasis, PolynomialEnvelope, RadialEmbedding
from equiformer_lite.utils import default_dtype


def _derivatives(f, r):
    r = torch.tensor([r], dtype=torch.float64, requires_grad=True)
    u = f(r)
    (d1,) = torch.autograd.grad(u.sum(), r, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), r)
    return u.item(), d1.item(), d2.item()


@pytest.mark.parametrize("p", [2, 5, 6])
def test_envelope_and_two_derivatives_vanish_at_cutoff(p):
    env = PolynomialEnvelope(4.0, p)
    assert _derivatives(env, 0.0)[0] == pytest.approx(1.0)
    u, d1, d2 = _derivatives(env, 4.0 - 1e-9)
    assert abs(u) < 1e-12 and abs(d1) < 1e-8 and abs(d2) < 1e-6
    assert _derivatives(env, 4.5) == (0.0, 0.0, 0.0)
    # It decreases monotonically from 1 to 0 inside the cutoff.
    values = env(torch.linspace(0, 4, 401, dtype=torch.float64))
    assert (values.diff() <= 1e-15).all()


def test_bessel_basis_and_embedding():
    with default_dtype(torch.float64):
        basis = BesselBasis(5.0, 8)
        embedding = RadialEmbedding(5.0, 8)
    r = torch.linspace(0.5, 5.0, 10, dtype=torch.float64)
    b = basis(r)
    assert b.shape == (10, 8)
    assert torch.allclose(b[:, 0], (2 / 5.0) ** 0.5 * torch.sin(torch.pi * r / 5.0) / r)
    features, envelope = embedding(r)
    assert features.shape == (10, 8) and envelope.shape == (10,)
    assert features[-1].abs().max() < 1e-12  # the envelope zeroes the features at the cutoff


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: BesselBasis(-1.0), "cutoff must be positive"),
        (lambda: BesselBasis(5.0, 0), "num_basis"),
        (lambda: PolynomialEnvelope(5.0, 1), "exponent p"),
    ],
)
def test_invalid_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("p", [2, 5, 6])
def test_envelope_keeps_float32_precision_near_the_cutoff(p):
    """The factored form: float32 values a few mÅ inside r_c agree with float64 to ~1e-7 relative.

    The expanded polynomial 1 - 28 d^6 + 48 d^7 - 21 d^8 (p = 6) evaluated in float32 gave
    1.9e-6, -1.9e-6 and 0 at r_c - 1e-2, 1e-3, 1e-4 Å (exact: 8.7e-7, 8.7e-10, 8.7e-13).
    """
    envelope = PolynomialEnvelope(4.0, p)
    r = torch.tensor([4.0 - 1e-2, 4.0 - 1e-3, 4.0 - 1e-4], dtype=torch.float32)
    exact = envelope(r.double())
    assert (exact > 0).all()
    assert ((envelope(r).double() - exact) / exact).abs().max() < 1e-6
    d = r.double() / 4.0
    expanded = 1 - (p + 1) * (p + 2) / 2 * d**p + p * (p + 2) * d ** (p + 1) - p * (p + 1) / 2 * d ** (p + 2)
    assert torch.allclose(exact, expanded, rtol=1e-6, atol=1e-14)  # the same function
