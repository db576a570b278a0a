# ruff: noqa: F821  (a MicroPython manifest: metadata/package come from the tool)
metadata(description="MCP23017 I2C port expander (port A outputs, port B inputs)",
         version="0.1.0")

package("mcp23017", base_path="..")
