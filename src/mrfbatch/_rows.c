/* mrfbatch._rows: provider and rate rows gathered straight into Arrow buffers.
 *
 * Written in C for speed: after scanning, making the rows of matched items and of the provider
 * groups their rates reference is the largest part of the fast engine's work (see
 * mrfbatch/provider_rows.py and mrfbatch/rates.py), and a Python object per value costs more than
 * reading the JSON itself. Each builder takes only the usual shape and gives up on anything
 * else, which Python then decodes, converts and counts as before: the rows are the same.
 *
 * ProviderRows (_rows_providers.c) gathers provider rows, RateRows (_rows_rates.c) rate rows;
 * both grow buffers in Arrow's layout (_rows_arrow.h) from JSON text of the usual shape, read by
 * a small reader that gives up on anything else (_rows_text.h). spill_references
 * (_rows_spill.c) writes plain provider_references entries to the provider spill file.
 */

#include "_rows.h"

static PyMethodDef module_methods[] = {
    {"spill_references", (PyCFunction)(void (*)(void))spill_references, METH_FASTCALL,
     "Provider spill-file records of plain provider_references entries (_rows_spill.c)."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "mrfbatch._rows",
    "Provider and rate rows gathered straight into Arrow buffers (see the module's source).",
    -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__rows(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (provider_rows_ready(module) < 0 || rate_rows_ready(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
