/* category.h: the six categories of a job's memory, and their names.
 *
 * The engine's arena (daemon/engine/arena.h) counts every buffer under one
 * of them; memtrain-run's JSON, mtctl's tables and the MemoryStats message
 * (proto/memtrain.proto, same order) show them under these names. */
#ifndef MEMTRAIN_CATEGORY_H
#define MEMTRAIN_CATEGORY_H

enum mt_mem_cat {
    MT_MEM_PARAMS,     /* trainable weights, and fixed feedback matrices */
    MT_MEM_GRADS,      /* gradient buffers */
    MT_MEM_OPTIM,      /* optimizer state (momentum, Adam moments) */
    MT_MEM_ACTS,       /* activations kept between forward and update */
    MT_MEM_WORKSPACE,  /* transient buffers of one phase */
    MT_MEM_DATA,       /* the dataset, the batch, the shuffle order */
    MT_MEM_NCAT
};

/* "params", "grads", "optimizer", "activations", "workspace", "data": the
 * name of cat as JSON keys and tables show it; "?" when cat is out of range.
 * Never NULL; a static string. */
const char *mt_mem_cat_name(enum mt_mem_cat cat);

#endif
