"""Census areal / dasymetric interpolation onto crops: hand-checked values, conservation, errors."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from pydantic import ValidationError

from riotvit.errors import CensusError, RasterError
from riotvit.grid import CropGrid
from riotvit.join.census import (
    CensusConfig,
    crop_layout,
    interpolate_to_crops,
    prepare_census,
    read_census,
)

UTM = "EPSG:32737"
CFG = CensusConfig(
    extensive=["population", "households"], intensive=["youth_share"], id_column="name"
)


def make_crops(grid: CropGrid, cols, rows) -> gpd.GeoDataFrame:
    """Every crop of the rectangle cols x rows, as the tile stage lays them out."""
    c, r = np.meshgrid(np.asarray(cols), np.asarray(rows))
    c, r = c.ravel(), r.ravel()
    fp = grid.footprints(c, r)
    return gpd.GeoDataFrame(
        {"crop_id": grid.crop_ids(c, r), "col": c, "row": r},
        geometry=shapely.box(fp[:, 0], fp[:, 1], fp[:, 2], fp[:, 3]),
        crs=grid.crs,
    )


def quadrants(x0: float = 0.0, y0: float = 0.0) -> gpd.GeoDataFrame:
    """Four rectangles: A, C are 150 x 150 m; B, D are 200 x 150 m and reach x = 350."""
    boxes = [(0, 0, 150, 150), (150, 0, 350, 150), (0, 150, 150, 300), (150, 150, 350, 300)]
    return gpd.GeoDataFrame(
        {
            "name": ["A", "B", "C", "D"],
            "population": [900.0, 1800.0, 450.0, 90.0],
            "households": [300.0, 600.0, 150.0, 30.0],
            "youth_share": [0.1, 0.2, 0.3, 0.4],
        },
        geometry=[shapely.box(x0 + a, y0 + b, x0 + c, y0 + d) for a, b, c, d in boxes],
        crs=UTM,
    )


GRID100 = CropGrid.create(32737, crop_m=100, crop_px=10)  # 100 m crops, 10 m pixels


@pytest.fixture
def grid_crops() -> gpd.GeoDataFrame:
    """5 x 3 crops of 100 m over [0, 500] x [0, 300]; column 4 lies outside the census."""
    return make_crops(GRID100, range(5), range(3))


def val(df: pd.DataFrame, col: int, row: int, name: str) -> float:
    return float(df.loc[GRID100.crop_id(col, row), name])


# -- areal ----------------------------------------------------------------------------------


def test_areal_values_by_hand(grid_crops):
    df = interpolate_to_crops(quadrants(), grid_crops, CFG)
    assert list(df.index) == list(grid_crops.crop_id)
    assert list(df.columns) == [
        "census_population", "census_households", "census_youth_share",
        "census_pop_density_km2", "census_coverage",
    ]
    # crop (0,0) = [0,100]^2 lies in A (area 22,500 m2): 900 * 10,000 / 22,500
    assert val(df, 0, 0, "census_population") == pytest.approx(400.0)
    assert val(df, 0, 0, "census_households") == pytest.approx(300 * 10_000 / 22_500)
    # crop (1,0): half in A (5,000 m2 -> 200), half in B (5,000 of 30,000 m2 -> 300)
    assert val(df, 1, 0, "census_population") == pytest.approx(500.0)
    assert val(df, 1, 0, "census_youth_share") == pytest.approx(0.15)
    # crop (1,1) touches the four polygons with 2,500 m2 each: 100 + 150 + 50 + 7.5
    assert val(df, 1, 1, "census_population") == pytest.approx(307.5)
    assert val(df, 1, 1, "census_youth_share") == pytest.approx(0.25)
    assert val(df, 0, 2, "census_population") == pytest.approx(200.0)
    assert val(df, 0, 0, "census_pop_density_km2") == pytest.approx(400 / 0.01)
    # edge: crop (3,0) = [300,400] x [0,100], only [300,350] is census (B): 1800 * 5,000/30,000
    assert val(df, 3, 0, "census_coverage") == pytest.approx(0.5)
    assert val(df, 3, 0, "census_population") == pytest.approx(300.0)
    assert val(df, 3, 0, "census_pop_density_km2") == pytest.approx(300 / 0.005)
    assert val(df, 3, 0, "census_youth_share") == pytest.approx(0.2)
    # outside the census: coverage 0, every value unknown
    assert val(df, 4, 1, "census_coverage") == 0.0
    assert df.loc[GRID100.crop_id(4, 1)].drop("census_coverage").isna().all()


def test_areal_conserves_totals_on_a_covering_grid():
    rng = np.random.default_rng(7)
    box = shapely.box(1000, 2000, 9000, 8000)
    pts = shapely.multipoints(shapely.points(rng.uniform(1000, 9000, 30), rng.uniform(2000, 8000, 30)))
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=box)), box)
    census = gpd.GeoDataFrame(
        {"population": rng.uniform(1e3, 1e5, len(cells)), "youth_share": rng.uniform(0, 1, len(cells))},
        geometry=cells, crs=UTM,
    )
    cfg = CensusConfig(extensive=["population"], intensive=["youth_share"])
    grid = CropGrid.create(32737, crop_m=672)
    cols, rows = grid.cells_in_bounds(tuple(census.total_bounds))
    df = interpolate_to_crops(census, make_crops(grid, cols, rows), cfg)
    assert df["census_population"].sum() == pytest.approx(census.population.sum(), rel=1e-6)
    inner = df["census_coverage"] > 0
    assert df.loc[inner, "census_youth_share"].between(0, 1).all()
    # covered area adds up to the census area
    assert (df["census_coverage"].sum() * 672**2) == pytest.approx(box.area, rel=1e-9)

    # half-overlapping crops: every point lies in 4 crops, so the sum counts everyone 4 times
    half = CropGrid.create(32737, crop_m=672, overlap=0.5)
    cols, rows = half.cells_in_bounds(tuple(census.total_bounds))
    report = prepare_census(census, cfg)[1]
    df2 = interpolate_to_crops(census, make_crops(half, cols, rows), cfg, report=report)
    assert df2["census_population"].sum() == pytest.approx(4 * census.population.sum(), rel=1e-6)
    assert any("double count" in a for a in report.assumptions)


def test_reprojected_census_matches_utm(grid_crops):
    x0, y0 = 256_000.0, 9_850_000.0
    grid = GRID100
    crops = make_crops(grid, range(2560, 2565), range(98500, 98503))
    utm = quadrants(x0, y0)
    dense = utm.copy()
    dense["geometry"] = shapely.segmentize(utm.geometry.values, 5.0)
    wgs = dense.to_crs("EPSG:4326")
    got = interpolate_to_crops(wgs, crops, CFG)
    same = interpolate_to_crops(wgs.to_crs(UTM), crops, CFG)
    pd.testing.assert_frame_equal(got, same)
    ref = interpolate_to_crops(utm, crops, CFG)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-4, atol=1e-6)
    assert got["census_population"].sum() == pytest.approx(3240.0, rel=1e-6)


# -- dasymetric -----------------------------------------------------------------------------


def write_raster(path, data, transform, crs=UTM, nodata=-99999.0):
    prof = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                dtype="float32", crs=crs, transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data.astype("float32"), 1)
    return path


def test_dasymetric_puts_everyone_where_the_raster_does(tmp_path, grid_crops):
    data = np.zeros((30, 50))  # 10 m pixels over [0,500] x [0,300], row 0 at the top
    data[30 - 18 : 30 - 12, 12:18] = 5.0  # [120,180]^2: inside crop (1,1), in all four polygons
    tif = write_raster(tmp_path / "pop.tif", data, Affine(10, 0, 0, 0, -10, 300))
    report = prepare_census(quadrants(), CFG)[1]
    df = interpolate_to_crops(quadrants(), grid_crops, CFG, tif, report=report)
    assert report.method == "dasymetric"
    assert val(df, 1, 1, "census_population") == pytest.approx(3240.0)
    assert val(df, 1, 1, "census_households") == pytest.approx(1080.0)
    others = df.drop(index=GRID100.crop_id(1, 1))["census_population"]
    assert others.fillna(0).abs().max() < 1e-9
    # intensive values and coverage do not depend on the raster
    assert val(df, 1, 1, "census_youth_share") == pytest.approx(0.25)
    assert val(df, 3, 0, "census_coverage") == pytest.approx(0.5)


def test_dasymetric_falls_back_to_area_share(tmp_path, grid_crops):
    data = np.zeros((30, 50))
    data[30 - 8 : 30 - 2, 2:8] = 1.0  # people only in A, inside crop (0,0)
    tif = write_raster(tmp_path / "pop.tif", data, Affine(10, 0, 0, 0, -10, 300))
    report = prepare_census(quadrants(), CFG)[1]
    df = interpolate_to_crops(quadrants(), grid_crops, CFG, tif, report=report)
    areal = interpolate_to_crops(quadrants(), grid_crops, CFG)
    assert val(df, 0, 0, "census_population") == pytest.approx(900.0)
    # B, C, D have no raster population: they keep the area share
    assert val(df, 2, 0, "census_population") == pytest.approx(600.0)
    assert val(df, 0, 2, "census_population") == pytest.approx(200.0)
    assert val(df, 1, 0, "census_population") == pytest.approx(300.0)  # only B's share
    assert df["census_population"].sum() == pytest.approx(areal["census_population"].sum())
    fb = [a for a in report.assumptions if "keep the area share" in a]
    assert fb and fb[0].startswith("3 polygon(s)") and "B, C, D" in fb[0]


def test_dasymetric_partial_raster_uses_polygon_mean_density(tmp_path, grid_crops):
    data = np.full((30, 25), 2.0)  # uniform people, but the raster stops at x = 250 (inside B, D)
    data[0, 0] = -99999.0  # a nodata pixel counts as 0 people
    tif = write_raster(tmp_path / "pop.tif", data, Affine(10, 0, 0, 0, -10, 300))
    report = prepare_census(quadrants(), CFG)[1]
    df = interpolate_to_crops(quadrants(), grid_crops, CFG, tif, report=report)
    areal = interpolate_to_crops(quadrants(), grid_crops, CFG)
    # B, D: uniform where known, uncovered part takes the mean density -> the area share
    for col, row in [(2, 0), (3, 0), (3, 1), (2, 2)]:
        assert val(df, col, row, "census_population") == pytest.approx(val(areal, col, row, "census_population"))
    # C lost one pixel (100 m2 of 22,500) to nodata: crop (0,2) has 99 of C's 225 pixels... minus it
    assert val(df, 0, 2, "census_population") == pytest.approx(450 * 99 / 224)
    assert any("partly covered" in a and "B, D" in a for a in report.assumptions)


@pytest.mark.parametrize(
    ("stride", "x_max", "res"),
    [(100.0, 500, 10.0), (50.0, 500, 10.0), (40.0, 500, 10.0), (40.0, 180, 10.0), (50.0, 200, 5.0)],
)
def test_dasymetric_matches_brute_force_per_crop(tmp_path, stride, x_max, res):
    """Random raster on the working lattice: weights are exact pixel sums per (polygon, crop).

    With ``x_max`` < 350 the crops cover only part of B and D: their totals then include the
    part beyond the crops (summed on the coarser grid)."""
    rng = np.random.default_rng(3)
    data = rng.gamma(0.5, 10.0, (30, 50))
    data[rng.random(data.shape) < 0.1] = -99999.0
    tif = write_raster(tmp_path / "pop.tif", data, Affine(10, 0, 0, 0, -10, 300))
    grid = CropGrid.create(32737, crop_m=100, crop_px=10, stride_m=stride)
    cols, rows = grid.cells_in_bounds((0, 0, x_max, 300))
    crops = make_crops(grid, cols, rows)
    census = quadrants()
    df = interpolate_to_crops(census, crops, CFG, tif, resolution_m=res)

    people = np.where(data < 0, 0.0, data)
    xc = np.arange(50) * 10 + 5.0
    yc = 300 - (np.arange(30) * 10 + 5.0)
    X, Y = np.meshgrid(xc, yc)
    expected = np.zeros(len(crops))
    for geom, pop in zip(census.geometry, census.population, strict=True):
        inp = shapely.contains_xy(geom, X, Y)
        total = people[inp].sum()
        for k, (x0, y0, x1, y1) in enumerate(crops.geometry.bounds.to_numpy()):
            ink = inp & (x0 <= X) & (x1 > X) & (y0 <= Y) & (y1 > Y)
            expected[k] += pop * people[ink].sum() / total
    got = df["census_population"].fillna(0.0).to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_dasymetric_blocks_merge_exactly(tmp_path):
    """Two halves of a crop grid get the same values as the whole (a reprojected raster)."""
    x0, y0 = 256_000.0, 9_850_000.0
    census = quadrants(x0, y0)
    lon0, lat0 = shapely.get_coordinates(gpd.GeoSeries([shapely.Point(x0, y0)], crs=UTM).to_crs(4326).values)[0]
    res = 1 / 3600
    data = np.random.default_rng(5).gamma(0.5, 10.0, (20, 30))
    tif = write_raster(tmp_path / "pop.tif", data, Affine(res, 0, lon0 - res, 0, -res, lat0 + 13 * res), crs="EPSG:4326")
    grid = CropGrid.create(32737, crop_m=100, crop_px=10, overlap=0.5)
    crops = make_crops(grid, range(5119, 5127), range(196999, 197006))
    whole = interpolate_to_crops(census, crops, CFG, tif)
    left = crops["col"] < 5123
    halves = pd.concat([
        interpolate_to_crops(census, crops[left], CFG, tif),
        interpolate_to_crops(census, crops[~left], CFG, tif),
    ]).loc[whole.index]
    pd.testing.assert_frame_equal(halves, whole, rtol=1e-9)
    assert whole["census_population"].sum() == pytest.approx(4 * 3240.0, rel=1e-9)


def test_dasymetric_raster_in_geographic_crs(tmp_path):
    x0, y0 = 256_000.0, 9_850_000.0
    grid = GRID100
    crops = make_crops(grid, range(2560, 2565), range(98500, 98503))
    census = quadrants(x0, y0)
    lon0, lat0 = shapely.get_coordinates(gpd.GeoSeries([shapely.Point(x0, y0)], crs=UTM).to_crs(4326).values)[0]
    res = 1 / 3600  # ~31 m
    data = np.ones((20, 30))  # uniform density in degrees: close to the area share
    tif = write_raster(tmp_path / "pop.tif", data, Affine(res, 0, lon0 - res, 0, -res, lat0 + 13 * res), crs="EPSG:4326")
    report = prepare_census(census, CFG)[1]
    df = interpolate_to_crops(census, crops, CFG, tif, report=report)
    areal = interpolate_to_crops(census, crops, CFG)
    assert df["census_population"].sum() == pytest.approx(3240.0, rel=1e-9)
    np.testing.assert_allclose(df["census_population"], areal["census_population"], rtol=1e-5)
    assert "resampled to" in report.assumptions[0]


def test_raster_errors(tmp_path, grid_crops):
    with pytest.raises(RasterError, match="not found"):
        interpolate_to_crops(quadrants(), grid_crops, CFG, tmp_path / "nope.tif")
    bad = tmp_path / "nocrs.tif"
    with rasterio.open(bad, "w", driver="GTiff", width=2, height=2, count=1, dtype="float32",
                       transform=Affine(10, 0, 0, 0, -10, 20)) as dst:
        dst.write(np.ones((1, 2, 2), "float32"))
    with pytest.raises(RasterError, match="no CRS"):
        interpolate_to_crops(quadrants(), grid_crops, CFG, bad)


# -- reading and validation -----------------------------------------------------------------


def test_bow_tie_is_repaired_and_counted(tmp_path):
    bow = shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])  # self-intersecting
    gdf = gpd.GeoDataFrame(
        {"name": ["tie", "ok"], "population": [1000.0, 10.0], "households": [1.0, 1.0],
         "youth_share": [0.5, 0.5]},
        geometry=[bow, shapely.box(200, 0, 300, 100)], crs=UTM,
    )
    path = tmp_path / "census.gpkg"
    gdf.to_file(path)
    census, report = read_census(path, CFG)
    assert report.repaired == 1
    assert report.repaired_examples == ["tie"]
    assert census.geometry.is_valid.all()
    assert census.geometry.iloc[0].area == pytest.approx(5000.0)  # two triangles of 2,500 m2
    assert any("repaired 1 invalid" in line for line in report.lines())
    df = interpolate_to_crops(census, make_crops(GRID100, range(3), [0]), CFG, report=report)
    assert val(df, 0, 0, "census_population") == pytest.approx(1000.0)
    assert val(df, 0, 0, "census_coverage") == pytest.approx(0.5)


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp", ".parquet"])
def test_read_formats(tmp_path, suffix, grid_crops):
    path = tmp_path / f"census{suffix}"
    census = quadrants().rename(columns={"youth_share": "youth"})
    if suffix == ".parquet":
        census.to_parquet(path)
    else:
        census.to_file(path)
    cfg = CensusConfig(extensive=["population"], intensive=["youth"], id_column="name")
    got, report = read_census(path, cfg)
    assert report.n_polygons == 4 and report.crs == "EPSG:32737"
    assert report.columns["population"] == ["population"]
    df = interpolate_to_crops(got, grid_crops, cfg, report=report)
    assert val(df, 1, 1, "census_population") == pytest.approx(307.5)
    assert report.coverage == pytest.approx((9 + 1.5) / 15)


def test_multilayer_geopackage_needs_a_layer(tmp_path):
    path = tmp_path / "two.gpkg"
    quadrants().to_file(path, layer="districts")
    quadrants().iloc[:2].to_file(path, layer="provinces")
    with pytest.raises(CensusError, match="2 layers.*districts"):
        read_census(path, CFG)
    with pytest.raises(CensusError, match="did you mean: provinces"):
        read_census(path, CFG.model_copy(update={"layer": "province"}))
    census, report = read_census(path, CFG.model_copy(update={"layer": "provinces"}))
    assert report.n_polygons == 2


def test_missing_columns_name_the_closest(tmp_path):
    gdf = quadrants().rename(columns={"population": "pop2019_total"})
    cfg = CensusConfig(extensive=["pop2019_totl", "households"], intensive=["youth_shares"])
    with pytest.raises(CensusError) as e:
        prepare_census(gdf, cfg, source="kenya.gpkg")
    msg = str(e.value)
    assert "kenya.gpkg" in msg and "'pop2019_totl' (closest: pop2019_total)" in msg
    assert "'youth_shares' (closest: youth_share" in msg
    assert "'households'" not in msg  # present, so not reported missing


def test_no_crs_asks_to_set_it():
    gdf = quadrants().set_crs(None, allow_override=True)
    with pytest.raises(CensusError, match="no CRS; set it"):
        prepare_census(gdf, CFG, source="c.gpkg")
    census, report = prepare_census(gdf, CFG.model_copy(update={"crs": "EPSG:32737"}))
    assert report.crs == "EPSG:32737"
    with pytest.raises(CensusError, match="'EPSG:99999' is not a CRS"):
        prepare_census(gdf, CFG.model_copy(update={"crs": "EPSG:99999"}))


def test_non_numeric_values_are_named():
    gdf = quadrants()
    gdf["households"] = ["300", "1,200", "n/a", ""]
    with pytest.raises(CensusError, match=r"'households' has 2 non-numeric.*'1,200', 'n/a'"):
        prepare_census(gdf, CFG)
    gdf["households"] = ["300", " 600 ", None, ""]  # numbers as text, blanks: accepted
    census, report = prepare_census(gdf, CFG)
    assert census["households"].tolist()[:2] == [300.0, 600.0]
    assert census["households"].isna().sum() == 2
    assert any("'households' is empty in 2 polygon(s) (C, D)" in w for w in report.warnings)


def test_config_roles_and_validation():
    cfg = CensusConfig(extensive=["households", "pop_total"], intensive=["rate"])
    assert cfg.population_column() == "pop_total"
    assert CensusConfig(extensive=["households"]).population_column() is None
    explicit = CensusConfig(extensive=["households"], population="people")
    assert explicit.extensive_columns() == ["households", "people"]
    with pytest.raises(ValidationError, match="both extensive and intensive"):
        CensusConfig(extensive=["a"], intensive=["a"])
    with pytest.raises(ValidationError, match="extra"):
        CensusConfig(extensive=["a"], colour="red")
    assert all(f.description for f in CensusConfig.model_fields.values())


def test_crop_layout_from_ids_and_off_grid_crops():
    grid = CropGrid.create(32737, crop_m=672, overlap=0.5)
    crops = make_crops(grid, range(10, 13), range(-2, 1)).drop(columns=["col", "row"])
    lay = crop_layout(crops)
    assert (lay.stride, lay.crop) == (336.0, 672.0)
    assert lay.cols.tolist()[:3] == [10, 11, 12] and lay.rows.tolist()[:3] == [-2, -2, -2]
    crops.loc[0, "geometry"] = shapely.box(3361, -672, 4033, 0)
    with pytest.raises(CensusError, match="not on the 672 m crop / 336 m stride grid"):
        crop_layout(crops)


def test_no_overlap_and_no_crops(grid_crops):
    report = prepare_census(quadrants(), CFG)[1]
    far = make_crops(GRID100, range(100, 102), range(2))
    df = interpolate_to_crops(quadrants(), far, CFG, report=report)
    assert df["census_coverage"].eq(0).all() and df["census_population"].isna().all()
    assert report.coverage == 0.0
    assert any("no census polygon overlaps any crop" in w for w in report.warnings)
    empty = interpolate_to_crops(quadrants(), grid_crops.iloc[:0], CFG)
    assert len(empty) == 0 and list(empty.columns)[-1] == "census_coverage"


def test_crops_must_be_projected(grid_crops):
    with pytest.raises(CensusError, match="not projected"):
        interpolate_to_crops(quadrants(), grid_crops.to_crs(4326), CFG)


# -- real data: Kenya 2019 census counties + WorldPop Nairobi --------------------------------


KENYA = CensusConfig(extensive=["pop2019_total", "households2019"], intensive=["avg_hh_size2019"], id_column="COUNTY")


@pytest.fixture
def nairobi(real):
    """Kenya's counties, WorldPop Nairobi, and the 672 m crops (UTM 37S) over Nairobi county."""
    gpkg = real("kenya_counties_census2019", "kenya_counties_census2019.gpkg")
    tif = real("worldpop_nairobi", "ken_pop_nairobi_100m.tif")
    census, report = read_census(gpkg, KENYA)
    grid = CropGrid.create(32737)  # UTM 37S, 672 m
    county = census[census.COUNTY == "Nairobi"]
    cols, rows = grid.cells_in_bounds(tuple(county.to_crs(grid.crs).total_bounds))
    return census, report, make_crops(grid, cols, rows), tif


@pytest.mark.real
def test_real_areal_matches_geopandas_overlay(nairobi):
    census, report, crops, _ = nairobi
    df = interpolate_to_crops(census, crops, KENYA, report=report)
    assert report.n_polygons == 47 and report.crs == "EPSG:4326"
    assert report.coverage == pytest.approx(1.0)
    # independent: county area share inside the crops' union, from gpd.overlay
    utm = census.to_crs(crops.crs)
    utm["full_area"] = utm.area
    union = gpd.GeoDataFrame(geometry=[shapely.box(*crops.total_bounds)], crs=crops.crs)
    pieces = gpd.overlay(utm, union, how="intersection")
    share = pieces.area / pieces["full_area"]
    expected = float((pieces["pop2019_total"] * share).sum())
    assert df["census_pop2019_total"].sum() == pytest.approx(expected, rel=1e-6)
    nai = pieces[pieces.COUNTY == "Nairobi"]
    assert float((nai.area / nai.full_area).iloc[0]) == pytest.approx(1.0, abs=1e-9)

    only = census[census.COUNTY == "Nairobi"]
    one = interpolate_to_crops(only, crops, KENYA)
    assert one["census_pop2019_total"].sum() == pytest.approx(4_397_073, rel=1e-6)
    assert one["census_households2019"].sum() == pytest.approx(1_506_888, rel=1e-6)
    inside = one["census_coverage"] == 1.0
    np.testing.assert_allclose(one.loc[inside, "census_avg_hh_size2019"], 2.9, rtol=1e-12)
    dens = one.loc[inside, "census_pop_density_km2"]
    assert dens.iloc[0] == pytest.approx(4_397_073 / (only.to_crs(crops.crs).area.iloc[0] / 1e6), rel=1e-9)


@pytest.mark.real
def test_real_dasymetric_conserves_and_follows_worldpop(nairobi):
    census, _, crops, tif = nairobi
    only = census[census.COUNTY == "Nairobi"]
    dasy = interpolate_to_crops(only, crops, KENYA, tif)
    areal = interpolate_to_crops(only, crops, KENYA)
    assert dasy["census_pop2019_total"].sum() == pytest.approx(4_397_073, rel=1e-6)
    assert dasy["census_households2019"].sum() == pytest.approx(1_506_888, rel=1e-6)

    # independent raster sum per crop: Nairobi's WorldPop pixel centres binned into crops
    import pyproj

    with rasterio.open(tif) as src:
        people = src.read(1).astype(float)
        rows, cols = np.nonzero(people > 0)
        lon, lat = rasterio.transform.xy(src.transform, rows, cols)
    inn = shapely.contains_xy(only.geometry.iloc[0], lon, lat)
    x, y = pyproj.Transformer.from_crs(4326, 32737, always_xy=True).transform(np.asarray(lon)[inn], np.asarray(lat)[inn])
    lay = crop_layout(crops)
    key = pd.Series(np.arange(len(crops)), index=pd.MultiIndex.from_arrays([lay.cols, lay.rows]))
    k = key.reindex(pd.MultiIndex.from_arrays([np.floor(x / 672).astype(int), np.floor(y / 672).astype(int)])).to_numpy()
    assert not np.isnan(k).any()  # the crops cover Nairobi
    raster = np.bincount(k.astype(int), people[rows, cols][inn], minlength=len(crops))
    d = dasy["census_pop2019_total"].fillna(0).to_numpy()
    a = areal["census_pop2019_total"].fillna(0).to_numpy()
    assert np.corrcoef(d, raster)[0, 1] > 0.98
    assert np.corrcoef(a, raster)[0, 1] < 0.7
    top = np.argsort(raster)[::-1][: len(raster) // 20]  # the densest 5% of crops (the centre)
    share = raster[top].sum() / raster.sum()
    assert d[top].sum() / d.sum() == pytest.approx(share, abs=0.02)
    assert d[top].sum() > 3 * a[top].sum()

    # with every county, Nairobi's neighbours only partly covered: report says so
    report = prepare_census(census, KENYA)[1]
    full = interpolate_to_crops(census, crops, KENYA, tif, report=report)
    assert full["census_pop2019_total"].sum() > dasy["census_pop2019_total"].sum()
    assert any("partly covered" in a and "Kiambu" in a for a in report.assumptions)
