"""Everything that writes user-facing outputs: COGs, cell layers, QGIS styles and project, model card.

Modules: ``cog`` (COG profile, streaming GeoTIFF writer, validation), ``layers`` (risk raster
and cells layers of a prediction), ``patches`` (patch-resolution driver rasters), ``styles``
(``.qml`` styles), ``qgis_project`` (``riotvit.qgs``), ``card`` (``model_card.md``). Only
predict, explain and train call into it; nothing here reads inputs. See ``docs/design.md``.
"""
