/* category.c: the memory category names (include/memtrain/category.h). */
#include "memtrain/category.h"

static const char *const cat_names[MT_MEM_NCAT] = {
    "params", "grads", "optimizer", "activations", "workspace", "data",
};

const char *mt_mem_cat_name(enum mt_mem_cat cat)
{
    return (unsigned)cat < MT_MEM_NCAT ? cat_names[cat] : "?";
}
