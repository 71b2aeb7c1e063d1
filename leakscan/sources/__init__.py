"""Inputs other than image files on disk and arrays in memory.

One module per kind of source, each the only place that imports its library, lazily:

* :mod:`~leakscan.sources.tables`: pandas DataFrames and Parquet manifests (pyarrow), with image
  paths or image bytes in a column;
* :mod:`~leakscan.sources.hf`: Hugging Face ``datasets`` (``pip install 'leakscan[hf]'``);
* :mod:`~leakscan.sources.dicom`: DICOM files and series (``pip install 'leakscan[dicom]'``);
* :mod:`~leakscan.sources.geotiff`: multi-band / 16-bit GeoTIFF tiles and their footprints
  (``pip install 'leakscan[geo]'``).

They all build an ordinary :class:`~leakscan.manifest.Manifest` whose ``source`` is a
:class:`~leakscan.sources.rows.RowSource`: where each row's pixels come from, decoded in
the same worker processes as image files (:func:`~leakscan.sources.rows.decode_item`).
"""

from __future__ import annotations

from .rows import RowSource, decode_item, missing_extra

__all__ = ["RowSource", "decode_item", "missing_extra"]
