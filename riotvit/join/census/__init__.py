"""Census polygons onto crops: areal and dasymetric interpolation.

``read_census`` reads and repairs a census layer; ``interpolate_to_crops`` turns its columns
into one value per crop (counts by area or population share, rates by area-weighted mean, the
population density and the census coverage).
"""

from riotvit.join.census.interpolate import CropLayout, crop_layout, interpolate_to_crops, overlaps
from riotvit.join.census.read import CensusConfig, CensusReport, prepare_census, read_census

__all__ = [
    "CensusConfig",
    "CensusReport",
    "CropLayout",
    "crop_layout",
    "interpolate_to_crops",
    "overlaps",
    "prepare_census",
    "read_census",
]
