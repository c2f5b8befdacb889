/* mrfbatch._rows: what its translation units share (see _rows.c). */

#ifndef MRFBATCH_ROWS_H
#define MRFBATCH_ROWS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

/* Shared between this module's files only: not exported from the shared library. */
#if defined(__GNUC__)
#define INTERNAL __attribute__((visibility("hidden")))
#else
#define INTERNAL
#endif

/* Each readies its type and adds it, with its constants, to the module: 0, or -1 with a Python
 * error set. */
INTERNAL int provider_rows_ready(PyObject *module); /* _rows_providers.c */
INTERNAL int rate_rows_ready(PyObject *module);     /* _rows_rates.c */

/* _rows.spill_references (_rows_spill.c). */
INTERNAL PyObject *spill_references(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
