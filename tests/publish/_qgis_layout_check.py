"""Run by the system Python with QGIS: open a project, export its print layout to PNG, report JSON.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 _qgis_layout_check.py PROJECT.qgs LAYOUT_NAME OUT.png OUT.json

This file imports nothing from riotvit and runs under Python 3.9+.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsLayoutExporter,
    QgsLayoutItemLabel,
    QgsLayoutItemLegend,
    QgsLayoutItemMap,
    QgsLayoutItemPicture,
    QgsLayoutItemScaleBar,
    QgsProject,
)


def main():
    project_path, name, png, report = sys.argv[1:5]
    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    ok = project.read(project_path)
    layout = project.layoutManager().layoutByName(name)
    out = {"read_ok": bool(ok), "layouts": [lay.name() for lay in project.layoutManager().layouts()],
           "found": layout is not None}
    if layout is not None:
        items = []
        for it in layout.items():
            if not hasattr(it, "uuid") or it.parentItem() is not None or not hasattr(it, "sizeWithUnits"):
                continue
            kind = type(it).__name__
            rect = it.sceneBoundingRect()
            info = {"kind": kind, "id": it.id(), "rect": [rect.left(), rect.top(), rect.right(), rect.bottom()]}
            if isinstance(it, QgsLayoutItemLabel):
                info["text"] = it.currentText()
            if isinstance(it, QgsLayoutItemLegend):
                info["title"] = it.title()
                info["layers"] = [n.name() for n in it.model().rootGroup().findLayers()]
                info["layer_valid"] = [n.layer() is not None for n in it.model().rootGroup().findLayers()]
                info["linked_map"] = it.linkedMap() is not None
            if isinstance(it, QgsLayoutItemMap):
                e = it.extent()
                info["extent"] = [e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()]
                info["crs"] = it.crs().authid()
            if isinstance(it, QgsLayoutItemScaleBar):
                info["units_per_segment"] = it.unitsPerSegment()
                info["unit_label"] = it.unitLabel()
                info["linked_map"] = it.linkedMap() is not None
            if isinstance(it, QgsLayoutItemPicture):
                info["picture"] = it.picturePath()
            items.append(info)
        page = layout.pageCollection().page(0)
        out["page_mm"] = [page.pageSize().width(), page.pageSize().height()]
        out["items"] = items
        exporter = QgsLayoutExporter(layout)
        settings = QgsLayoutExporter.ImageExportSettings()
        settings.dpi = 100
        result = exporter.exportToImage(png, settings)
        out["export_result"] = int(result)
        out["export_ok"] = result == QgsLayoutExporter.Success
    with open(report, "w") as f:
        json.dump(out, f, indent=2)
    sys.stdout.flush()
    os._exit(0)  # QGIS 3.22 may crash in teardown; the report is complete


if __name__ == "__main__":
    main()
