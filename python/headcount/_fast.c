/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * headcount._fast: the calls of a join and a leave, for the Python module.
 *
 * The module reaches libheadcount through ctypes, which costs a few tenths of a
 * microsecond a call before the function does anything (it converts the arguments and
 * prepares a libffi call each time), and a join and its leave are two such calls, where a
 * Python pidfile with flock() takes three microseconds in all (bench/README.md, "The
 * Python module"). These calls are made here instead, for less than half of that;
 * everything else stays in ctypes, and the module makes these through ctypes too when
 * this extension cannot be loaded (another Python implementation, or a build without
 * Python's headers).
 *
 * It links to no libheadcount of its own: bind() hands it the addresses of the functions
 * that ctypes loaded, so that both reach the very same library (a second copy would keep
 * its own directory cache and spare descriptions, and a seat taken by one could not be
 * given back through the other); headcount.h gives their types. It reads no struct:
 * options, regions and seats pass as addresses. Built against the stable ABI (Py_LIMITED_API), one file serves every
 * CPython from 3.7 on.
 */
#define Py_LIMITED_API 0x03070000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>

#include "headcount.h"          /* the functions' types only: nothing is linked from it */

static __typeof__(&hc_join) hc_join_p;
static __typeof__(&hc_region_join) hc_region_join_p;
static __typeof__(&hc_leave) hc_leave_p;

PyMODINIT_FUNC PyInit__fast(void);

/* An address as the module passes it: an int above 0 (OverflowError for a negative one,
 * TypeError for what is no int). Nothing more can be checked: as with ctypes, the caller
 * answers for it. */
static void *address(PyObject *o) {
        unsigned long long a = o ? PyLong_AsUnsignedLongLong(o) : 0;

        if (a == (unsigned long long) -1 && PyErr_Occurred())
                return NULL;
        if (a == 0 || a > UINTPTR_MAX) {
                if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_ValueError, "not an address");
                return NULL;
        }
        /* NOLINTNEXTLINE(performance-no-int-to-ptr): Python hands addresses as ints */
        return (void *) (uintptr_t) a;
}

/* bind(hc_join, hc_region_join, hc_leave): the addresses of the library's functions. */
static PyObject *fast_bind(PyObject *self, PyObject *args) {
        void *j, *rj, *l;

        if (PyTuple_Size(args) != 3) {
                PyErr_SetString(PyExc_TypeError, "bind() takes three addresses");
                return NULL;
        }
        if (!(j = address(PyTuple_GetItem(args, 0))) || !(rj = address(PyTuple_GetItem(args, 1))) ||
            !(l = address(PyTuple_GetItem(args, 2))))
                return NULL;
        /* From void * to function pointers through an integer, as POSIX allows dlsym()'s. */
        /* NOLINTNEXTLINE(performance-no-int-to-ptr) */
        hc_join_p = (__typeof__(hc_join_p)) (uintptr_t) j;
        /* NOLINTNEXTLINE(performance-no-int-to-ptr) */
        hc_region_join_p = (__typeof__(hc_region_join_p)) (uintptr_t) rj;
        /* NOLINTNEXTLINE(performance-no-int-to-ptr) */
        hc_leave_p = (__typeof__(hc_leave_p)) (uintptr_t) l;
        Py_RETURN_NONE;
}

/* A join of WHAT (a name's bytes, or a region's address) with the options at an
 * address: the seat's address, or the negative errno. The GIL is let go during the call,
 * as ctypes does: a join may wait for a seat. */
static PyObject *call_join(PyObject *args, bool by_name) {
        const void *what, *opt;
        hc_slot *slot = NULL;
        int r;

        if (by_name ? !hc_join_p : !hc_region_join_p) {
                PyErr_SetString(PyExc_RuntimeError, "headcount._fast is not bound");
                return NULL;
        }
        if (PyTuple_Size(args) != 2) {
                PyErr_SetString(PyExc_TypeError, "a join takes two arguments");
                return NULL;
        }
        if (by_name)
                what = PyBytes_AsString(PyTuple_GetItem(args, 0));
        else
                what = address(PyTuple_GetItem(args, 0));
        if (!what)
                return NULL;
        opt = address(PyTuple_GetItem(args, 1));
        if (!opt)
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        r = by_name ? hc_join_p(what, opt, &slot) : hc_region_join_p((hc_region *) what, opt, &slot);
        Py_END_ALLOW_THREADS
        if (r < 0)
                return PyLong_FromLong(r);
        return PyLong_FromVoidPtr(slot);
}

/* join(name, options): hc_join(). */
static PyObject *fast_join(PyObject *self, PyObject *args) {
        return call_join(args, true);
}

/* region_join(region, options): hc_region_join(). */
static PyObject *fast_region_join(PyObject *self, PyObject *args) {
        return call_join(args, false);
}

/* leave(slot): hc_leave(). The GIL is let go: a fleet seat's leave writes to its agent. */
static PyObject *fast_leave(PyObject *self, PyObject *arg) {
        hc_slot *slot;

        if (!hc_leave_p) {
                PyErr_SetString(PyExc_RuntimeError, "headcount._fast is not bound");
                return NULL;
        }
        slot = address(arg);
        if (!slot)
                return NULL;
        Py_BEGIN_ALLOW_THREADS
        (void) hc_leave_p(slot);
        Py_END_ALLOW_THREADS
        Py_RETURN_NONE;
}

static PyMethodDef fast_methods[] = {
        { "bind", fast_bind, METH_VARARGS, "bind(hc_join, hc_region_join, hc_leave): their addresses." },
        { "join", fast_join, METH_VARARGS, "join(name, options) -> seat address, or -errno." },
        { "region_join", fast_region_join, METH_VARARGS,
          "region_join(region, options) -> seat address, or -errno." },
        { "leave", fast_leave, METH_O, "leave(seat): gives the seat back." },
        { NULL, NULL, 0, NULL },
};

static struct PyModuleDef fast_module = {
        PyModuleDef_HEAD_INIT,
        .m_name = "headcount._fast",
        .m_doc = "The calls of a join and a leave, for the headcount module (see its source).",
        .m_size = -1,
        .m_methods = fast_methods,
};

PyMODINIT_FUNC PyInit__fast(void) {
        return PyModule_Create(&fast_module);
}
