from torchinfo import summary

from reference.models import count_parameters
from reference.extras.tiny_search import (
    SMALLEST_KNOWN,
    candidate_architectures,
    exercise1_data,
    fit_recipe,
    search_smallest_mlp,
    train_accuracy,
)


def test_known_smallest_recipe_fits_with_21_parameters():
    model = fit_recipe(SMALLEST_KNOWN)
    assert train_accuracy(model, exercise1_data()) == 100.0
    assert count_parameters(model) == 21 == summary(model, input_size=(1, 2), verbose=0).trainable_params


def test_candidates_are_ordered_by_size_and_stop_at_the_course_answer():
    sizes = [sum((a + 1) * b for a, b in zip((2, *h), (*h, 3))) for h in candidate_architectures()]
    assert sizes == sorted(sizes) and sizes[0] == 9 and max(sizes) <= 33
    assert (3,) in candidate_architectures() and (5,) in candidate_architectures()


def test_search_rejects_too_small_and_reports_the_first_fitting_size():
    lines = []
    result = search_smallest_mlp(architectures=[(2,), (3,)], restarts=64, epochs=300, log=lines.append)
    assert result.best is not None and result.verified
    assert result.best.n_params == 21 and result.best.hidden == (3,)
    assert result.sizes_tried() == [15, 21]
    assert not any(a.fitted_seeds for a in result.attempts if a.n_params == 15)
    assert len(lines) == len(result.attempts)
    assert result.to_json()["best"]["n_params"] == 21
