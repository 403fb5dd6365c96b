"""A new session's input from a training set: what ``paceui new DATA`` and the notebook's "start from
data" form both use (one proposal, :func:`paceui.fit.recipe.write_recipe`, written where the session lives)."""

from __future__ import annotations

from pathlib import Path

YAML_SUFFIXES = (".yaml", ".yml")
"""A source with one of these suffixes is a pacemaker input file; anything else is training data."""


def input_for_new(source: str | Path, path: str | Path, minutes: float = 10.0,
                  test_size: float = 0.1) -> tuple[Path, str]:
    """The input.yaml a new session in ``path`` starts from, and what was done: ``source`` itself (and "")
    when it is a pacemaker input file, else the recipe's proposal for the training data ``source``
    (elements, cutoff from the nearest-neighbour distances and density, a basis and iterations sized for
    ``minutes`` of fitting on this machine, ``test_size`` of the data for validation), written to
    ``path/input.yaml`` so the user sees what was used; the message summarises the data and the choices."""
    if Path(source).suffix.lower() in YAML_SUFFIXES:
        return Path(source), ""
    from paceui.fit.recipe import write_recipe

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "input.yaml"
    return out, write_recipe(str(source), str(out), minutes=minutes, test_size=test_size)
