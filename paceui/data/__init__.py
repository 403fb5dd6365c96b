"""Datasets for fitting: pacemaker dataframes / ASE files, reference energies, validation,
weights, train/test split and cached packed neighbour lists (energies eV, lengths Å)."""

from __future__ import annotations

from paceui.data.io import frame_from_atoms, load_dataframe, load_files, resolve_path, save_dataframe
from paceui.data.nlcache import PackedNeighbors, build_packed_neighbors, dataset_hash, default_cache_dir
from paceui.data.pickles import UnsafePickleError
from paceui.data.prepare import DataConfig, PreparedData, prepare_dataset
from paceui.data.reference import DataWarning, apply_reference_energy, reference_energy_json
from paceui.data.split import split_indices, train_test_split
from paceui.data.validate import DataValidationError, DropRecord, filter_rows
from paceui.data.weights import (
    EnergyBasedWeightingPolicy,
    ExternalWeightingPolicy,
    UniformWeightingPolicy,
    WeightingPolicy,
    normalize_weights,
    weighting_from_dict,
)
from paceui.errors import DataError

__all__ = [
    "DataConfig", "DataError", "DataValidationError", "DataWarning", "Dataset", "DropRecord",
    "EnergyBasedWeightingPolicy",
    "ExternalWeightingPolicy", "PackedNeighbors", "PreparedData", "UniformWeightingPolicy", "UnsafePickleError",
    "WeightingPolicy", "apply_reference_energy", "build_packed_neighbors", "dataset_hash", "default_cache_dir",
    "filter_rows", "frame_from_atoms", "load_dataframe", "load_files", "normalize_weights", "prepare_dataset",
    "reference_energy_json", "resolve_path", "save_dataframe", "split_indices", "train_test_split",
    "weighting_from_dict",
]


class Dataset:
    """Facade over the data layer: ``Dataset.load``, ``Dataset.save``, ``Dataset.prepare``."""

    load = staticmethod(load_files)
    load_file = staticmethod(load_dataframe)
    save = staticmethod(save_dataframe)
    prepare = staticmethod(prepare_dataset)
    neighbors = staticmethod(build_packed_neighbors)
