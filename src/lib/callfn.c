/* callfn.c - ember_call_fn: run a function pointer of the caller's image.
 *
 * Runners are forks of the program that started the pool, so a function of
 * that program (or of a library it had loaded) has the same address in
 * them. A caller names the function by the module that holds it: the
 * module's load bias, its GNU build-id, and the function's address. The
 * runner looks the address up among its own modules and runs it only if it
 * falls in an executable segment of a module with that same bias and
 * build-id; anything else (another program, the same program started anew at
 * another address, a library loaded after the pool started) is refused with
 * EMBER_EIMAGE before any of it runs. */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include "lib/internal.h"

#define EMBER__BUILD_ID_MAX 32

struct fn_hdr {                 /* the call's arguments: this, then the context */
    uint64_t addr;              /* the function's address in the caller */
    uint64_t bias;              /* load bias of the module holding it */
    uint32_t id_len;
    uint32_t _pad;
    uint8_t  build_id[EMBER__BUILD_ID_MAX];
};

struct module { uint64_t addr, bias; uint32_t id_len; uint8_t id[EMBER__BUILD_ID_MAX]; bool found; };

/* The GNU build-id note among a module's PT_NOTE segments. */
static void read_build_id(const struct dl_phdr_info *info, struct module *m)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        size_t left = ph->p_memsz;
        while (left >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            size_t name = (n->n_namesz + 3) & ~3u, desc = (n->n_descsz + 3) & ~3u;
            size_t total = sizeof *n + name + desc;
            if (total > left) break;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
                memcmp(p + sizeof *n, "GNU", 4) == 0 && n->n_descsz <= EMBER__BUILD_ID_MAX) {
                m->id_len = n->n_descsz;
                memcpy(m->id, p + sizeof *n + name, n->n_descsz);
                return;
            }
            p += total;
            left -= total;
        }
    }
}

/* dl_iterate_phdr callback: is m->addr in an executable segment of INFO? */
static int find_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct module *m = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && m->addr >= lo &&
            m->addr < lo + ph->p_memsz) {
            m->bias = info->dlpi_addr;
            m->found = true;
            read_build_id(info, m);
            return 1;
        }
    }
    return 0;
}

static bool lookup(uint64_t addr, struct module *m)
{
    memset(m, 0, sizeof *m);
    m->addr = addr;
    dl_iterate_phdr(find_module, m);
    return m->found;
}

/* The built-in handler "ember.fn" (runner side). */
int ember__fn_handler(const void *args, size_t len, ember_out *out, const ember_job *job)
{
    struct fn_hdr h;
    if (len < sizeof h) return -EMBER_EIMAGE;
    memcpy(&h, args, sizeof h);
    struct module m;
    if (h.id_len == 0 || h.id_len > EMBER__BUILD_ID_MAX || !lookup(h.addr, &m) ||
        m.bias != h.bias || m.id_len != h.id_len || memcmp(m.id, h.build_id, h.id_len) != 0)
        return -EMBER_EIMAGE;
    ember_handler_fn fn = (ember_handler_fn)(uintptr_t)h.addr;
    return fn((const unsigned char *)args + sizeof h, len - sizeof h, out, job);
}

static __thread struct module g_last; /* the module of the last function called */

int ember_submit_fn(ember_client *c, ember_handler_fn fn, const void *ctx, size_t ctx_len,
                    int64_t timeout_ns, unsigned flags, ember_call_id *id)
{
    if (!c || !fn || !id || (ctx_len && !ctx))
        return ember__fail(-EMBER_EINVAL, "ember_call_fn: bad argument");
    uint64_t addr = (uint64_t)(uintptr_t)fn;
    struct module m;
    if (g_last.found && g_last.addr == addr) {
        m = g_last;
    } else if (!lookup(addr, &m) || m.id_len == 0) {
        return ember__fail(-EMBER_EIMAGE, "function %p is not in a module with a build-id",
                           (void *)fn);
    } else {
        g_last = m;
    }
    int h = ember_handler(c, "ember.fn");
    if (h < 0) return ember__fail(-EMBER_EIMAGE, "the pool runs no function pointers");
    if (ctx_len > ember_max_payload(c) - sizeof(struct fn_hdr))
        return ember__fail(-EMBER_ETOOBIG, "context of %zu bytes exceeds max_payload", ctx_len);
    size_t len = sizeof(struct fn_hdr) + ctx_len;
    unsigned char stackbuf[512], *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!buf) return ember__fail(-EMBER_ENOMEM, "ember_call_fn: no memory for a %zu-byte context", len);
    struct fn_hdr hd = { .addr = addr, .bias = m.bias, .id_len = m.id_len };
    memcpy(hd.build_id, m.id, m.id_len);
    memcpy(buf, &hd, sizeof hd);
    if (ctx_len) memcpy(buf + sizeof hd, ctx, ctx_len);
    int rc = ember_submit_flags(c, h, buf, len, timeout_ns, flags, id);
    if (buf != stackbuf) free(buf);
    return rc;
}

int ember_call_fn(ember_client *c, ember_handler_fn fn, const void *ctx, size_t ctx_len,
                  ember_result *res, int64_t timeout_ns)
{
    if (!res) return ember__fail(-EMBER_EINVAL, "ember_call_fn: res is NULL");
    ember_call_id id;
    int rc = ember_submit_fn(c, fn, ctx, ctx_len, timeout_ns, 0, &id);
    if (rc) {
        memset(res, 0, sizeof *res);
        res->runner = EMBER_NONE;
        res->node = -1;
        res->_idx = EMBER_NONE;
        return res->status = rc;
    }
    return ember_wait(c, id, res);
}
