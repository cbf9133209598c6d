"""Everything that writes user-facing outputs: COGs, cell layers, QGIS styles and project, model card.

Modules: ``cog`` (COG profile, streaming GeoTIFF writer, validation), ``mosaic`` (rasters
mosaicked from per-crop values: risk, drivers, attention), ``layers`` (cells layers of a
prediction), ``styles``
(``.qml`` styles), ``qgis_project`` (``riotvit.qgs``), ``card`` (``model_card.md``). Only
predict, explain and train call into it; nothing here reads inputs. See ``docs/design.md``.
"""
