"""./package.json (for ``mpremote mip install ./package.json``) lists exactly the device
modules: every firmware/ and lib/ module and package (main.py and the manifest.py files aside)
and boards/*.py, at /lib
paths that keep their import names (tools/deploy.py --write-package-json regenerates it)."""

import json
import os

_ROOT = "/".join(__file__.replace("\\", "/").split("/")[:-3]) or "."


def _py(folder, rel=""):
    """.py files under folder (packages included, sorted per folder, files first)."""
    base = _ROOT + "/" + folder + ("/" + rel if rel else "")
    names = sorted(os.listdir(base))
    out = [rel + n if not rel else rel + "/" + n for n in names
           if n.endswith(".py") and n != "manifest.py"]  # (build descriptions: not modules)
    for n in names:
        if n[0] not in "._" and not n.endswith(".py") and os.stat(base + "/" + n)[0] & 0x4000:
            out += _py(folder, n if not rel else rel + "/" + n)
    return out


def test_package_json_lists_every_device_module():
    with open(_ROOT + "/package.json") as f:
        pj = json.load(f)
    want = [[n, "firmware/" + n] for n in _py("firmware") if n != "main.py"]
    want += [[n, "lib/" + n] for n in _py("lib")]
    want += [["boards/" + n, "boards/" + n] for n in _py("boards") if "/" not in n]
    assert pj["urls"] == want, "package.json out of date: run tools/deploy.py --write-package-json"
    assert pj["deps"] == [], "the firmware needs no micropython-lib package"
    for _target, src in pj["urls"]:
        assert os.stat(_ROOT + "/" + src)[6] > 0, src
