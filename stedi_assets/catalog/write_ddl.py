"""Regenerate the committed DDL files from the contract: `python -m stedi_assets.catalog.write_ddl`."""

import shutil

from .ddl import DDL_DIR, statements

if __name__ == "__main__":
    shutil.rmtree(DDL_DIR, ignore_errors=True)
    for name, text in statements().items():
        path = DDL_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
