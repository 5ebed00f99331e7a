"""The base class's contract: the graph radius a model asks of the data pipeline."""

import pytest

from equiformer_lite import A2IPotential, GATv2Potential, SE3Potential
from equiformer_lite.data import DEFAULT_MIN_DISTANCE


@pytest.mark.parametrize("model_class", [SE3Potential, GATv2Potential])
def test_a_local_model_builds_its_graphs_at_its_cutoff(model_class):
    assert model_class.graph_cutoff_of({"cutoff": 3.5}) == 3.5
    default = model_class.graph_cutoff_of({})  # the constructor's default, not a second copy of it
    assert default == model_class(["H"]).cutoff == model_class(["H"]).graph_cutoff
    for bad in (0.0, -1.0, "5", True):
        with pytest.raises(ValueError, match="cutoff must be a positive number of Å"):
            model_class.graph_cutoff_of({"cutoff": bad})
        with pytest.raises(ValueError, match="cutoff must be a positive number"):
            model_class(["H"], cutoff=bad)


def test_a_model_without_edges_builds_its_graphs_at_the_overlap_radius():
    assert A2IPotential.graph_cutoff_of({}) == DEFAULT_MIN_DISTANCE
    assert A2IPotential.graph_cutoff_of({"cutoff": 7.0}) == DEFAULT_MIN_DISTANCE  # the model itself refuses it
