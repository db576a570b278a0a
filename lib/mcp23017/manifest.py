# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
import os

metadata(description="MCP23017 I2C port expander (port A outputs, port B inputs)",
         version="0.1.0")

# every module of the package but this manifest (the manifest tool runs from this folder)
_files = sorted(n for n in os.listdir(".") if n.endswith(".py") and n != "manifest.py")
package("mcp23017", files=_files, base_path="..", opt=3)
