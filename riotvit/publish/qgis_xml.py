"""The QGIS 3.22 XML that styles (``.qml``) and the project (``.qgs``) share.

The version string, the doctype, one element helper, one number format and one serialiser,
so :mod:`riotvit.publish.styles` and :mod:`riotvit.publish.qgis_project` write the same dialect.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

QGIS_VERSION = "3.22.16-Białowieża"
DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """Append ``<tag attrib...>text</tag>`` to ``parent`` and return it."""
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def num(value: float) -> str:
    """A number as QGIS writes it: up to 12 significant digits (``inf``, ``-inf`` for infinities)."""
    return f"{float(value):.12g}"


def to_text(root: ET.Element, indent: bool = True) -> str:
    """The document: doctype, the XML (indented by two spaces) and a final newline."""
    if indent:
        ET.indent(root, space="  ")
    return DOCTYPE + "\n" + ET.tostring(root, encoding="unicode") + "\n"
