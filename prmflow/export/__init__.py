"""``prmflow export``: a finished run's step labels in a PRM trainer's format (TRL, OpenRLHF,
Math-Shepherd, prmflow's own weighted one) or its problems and R3 start states as verl RL data, with a
dataset card. Pure: DuckDB and pyarrow over the run's Parquet, no Beam."""

import sys
import types

from prmflow.export.api import ExportResult, export
from prmflow.export.config import FORMATS, LABELS, ExportConfig, ExportError

__all__ = ["FORMATS", "LABELS", "ExportConfig", "ExportError", "ExportResult", "export"]


class _ExportModule(types.ModuleType):
    """``prmflow.export`` is this package and also the export call, so ``prmflow.export(...)`` works
    from the top level without shadowing the package (``prmflow.export.cli`` and friends)."""

    def __call__(self, run_dir, out, config: ExportConfig | None = None, **options):
        """Export a finished run's labels: ``prmflow.export(run_dir, out, format="trl")``; ``options``
        are :class:`ExportConfig` fields (format, label, min_weight, val_fraction, seed, file_format,
        overwrite, ...), or pass a whole ``config``. Returns the :class:`ExportResult`; raises
        ExportError naming the option for an export that cannot be made."""
        if config is None:
            for key in ("sources", "methods"):
                if isinstance(options.get(key), (list, str)):
                    options[key] = tuple([options[key]] if isinstance(options[key], str) else options[key])
            config = ExportConfig(**options)
        elif options:
            raise TypeError("pass either config or options, not both")
        return export(str(run_dir), str(out), config)


sys.modules[__name__].__class__ = _ExportModule
