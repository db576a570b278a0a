"""./package.json (for ``mpremote mip install ./package.json``) lists exactly the device
modules: every firmware/*.py but main.py, lib/*.py and boards/*.py, at /lib paths that keep
their import names (tools/deploy.py --write-package-json regenerates it)."""

import json
import os

_ROOT = "/".join(__file__.replace("\\", "/").split("/")[:-3]) or "."


def _py(folder):
    return sorted(n for n in os.listdir(_ROOT + "/" + folder) if n.endswith(".py"))


def test_package_json_lists_every_device_module():
    with open(_ROOT + "/package.json") as f:
        pj = json.load(f)
    want = [[n, "firmware/" + n] for n in _py("firmware") if n != "main.py"]
    want += [[n, "lib/" + n] for n in _py("lib")]
    want += [["boards/" + n, "boards/" + n] for n in _py("boards")]
    assert pj["urls"] == want, "package.json out of date: run tools/deploy.py --write-package-json"
    assert pj["deps"] == [], "the firmware needs no micropython-lib package"
    for _target, src in pj["urls"]:
        assert os.stat(_ROOT + "/" + src)[6] > 0, src
