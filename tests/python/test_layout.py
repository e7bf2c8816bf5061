# SPDX-License-Identifier: LGPL-2.1-or-later
"""The structures the module mirrors with ctypes have the compiler's sizes and offsets
(tests/python/layout prints them from headcount.h), and its constants headcount.h's."""
import ctypes
import os
import subprocess

import pytest

import headcount

STRUCTS = {
    "hc_options": headcount._Options,
    "hc_instance": headcount._Instance,
    "hc_fleet_instance": headcount._FleetInstance,
    "hc_run": headcount._Run,
    "hc_message": headcount._Message,
}


def compiler():
    prog = os.environ.get("HC_TEST_LAYOUT")
    if not prog or not os.path.exists(prog):
        pytest.skip("no tests/python/layout (make check builds it)")
    out = subprocess.run([prog], capture_output=True, text=True, check=True).stdout
    return dict(line.rsplit(" ", 1) for line in out.splitlines())


def test_struct_layouts():
    c = compiler()
    checked = 0
    for key, value in c.items():
        struct, _, field = key.partition(".")
        if struct not in STRUCTS:
            continue
        cls = STRUCTS[struct]
        if field:
            assert getattr(cls, field).offset == int(value), f"offsetof({struct}, {field})"
        else:
            assert ctypes.sizeof(cls) == int(value), f"sizeof({struct})"
            # every field of the C struct is mirrored: none left out, none extra
            c_fields = {k.split(".", 1)[1] for k in c if k.startswith(struct + ".")}
            assert c_fields == {f[0] for f in cls._fields_}, struct
        checked += 1
    assert checked == 5 + 14 + 9 + 3 + 14 + 5


def test_constants():
    c = compiler()
    for key, value in c.items():
        if key.startswith("HC_"):
            assert getattr(headcount, key) == int(value), key
