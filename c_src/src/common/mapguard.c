/* SPDX-License-Identifier: MIT */
/*
 * Guarded file mappings: a file mapped read-only and truncated while in use
 * (by this process or another) raises SIGBUS on the first access past its
 * new end.  The handler installed here catches a fault inside a registered
 * mapping, maps zero pages over the rest of that mapping (from the faulting
 * page to its end) so the interrupted access -- a kernel on any thread, a
 * CRC, a copy -- finishes on zeros, and marks the mapping damaged.  The
 * caller checks the mark after the call and discards the result.  Faults
 * anywhere else go to the handler that was installed before this one.
 *
 * The handler only reads the slot table (atomic loads), calls mmap (a plain
 * system call on every platform lrq supports, though POSIX does not list it
 * as async-signal-safe), stores the damaged mark atomically and, to chain,
 * calls sigaction and raise (both async-signal-safe).
 */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS, SA_SIGINFO with -std=c99 */

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/internal.h"
#include "lrq.h"

enum { SLOT_FREE = 0, SLOT_CLAIMED = 1, SLOT_ACTIVE = 2 };

typedef struct {
    int state;        /* SLOT_*, atomic */
    uintptr_t base;   /* page-aligned start; written before state becomes ACTIVE */
    uintptr_t end;    /* one past the last byte, rounded up to a page */
    int damaged;      /* atomic: set by the handler, never cleared while registered */
} guard_slot;

static guard_slot slots[LRQ_MAPPING_GUARD_MAX];
static struct sigaction previous;  /* the SIGBUS action before ours */
static uintptr_t page_size;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static void chain(const int sig, siginfo_t *const info, void *const context)
{
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != NULL) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        /* The default action: reinstate it and let the signal (pending on
         * return, or the fault repeating) end the process as it would have. */
        (void)sigaction(sig, &previous, NULL);
        (void)raise(sig);
    }
}

static void on_sigbus(const int sig, siginfo_t *const info, void *const context)
{
    const uintptr_t addr = (uintptr_t)info->si_addr;
    size_t i;

    for (i = 0; i < LRQ_MAPPING_GUARD_MAX; i++) {
        guard_slot *const s = &slots[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SLOT_ACTIVE)
            continue;
        if (addr >= s->base && addr < s->end) {
            const uintptr_t page = addr & ~(page_size - 1);
            void *const zeros = mmap((void *)page, (size_t)(s->end - page), PROT_READ,
                                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            if (zeros == MAP_FAILED)
                break; /* cannot repair: the fault is fatal, as without the guard */
            __atomic_store_n(&s->damaged, 1, __ATOMIC_RELEASE);
            return;
        }
    }
    chain(sig, info, context);
}

/* Make on_sigbus the SIGBUS action unless it already is (another handler,
 * such as Python's faulthandler, may have been installed since). */
static int install(void)
{
    struct sigaction now, ours;
    int rc = LRQ_OK;

    (void)pthread_mutex_lock(&install_lock);
    if (sigaction(SIGBUS, NULL, &now) != 0) {
        rc = LRQ_ERR_INTERNAL;
    } else if (!((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_sigbus)) {
        memset(&ours, 0, sizeof ours);
        ours.sa_sigaction = on_sigbus;
        ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
        (void)sigemptyset(&ours.sa_mask);
        page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
        previous = now;
        if (sigaction(SIGBUS, &ours, NULL) != 0)
            rc = LRQ_ERR_INTERNAL;
    }
    (void)pthread_mutex_unlock(&install_lock);
    return rc;
}

int lrq_mapping_guard(const void *const base, const size_t size, int *const slot)
{
    size_t i;
    int rc;

    if (base == NULL || size == 0 || slot == NULL)
        return LRQ_ERR_ARGUMENT;
    rc = install();
    if (rc != LRQ_OK)
        return rc;
    for (i = 0; i < LRQ_MAPPING_GUARD_MAX; i++) {
        int expected = SLOT_FREE;
        if (__atomic_compare_exchange_n(&slots[i].state, &expected, SLOT_CLAIMED, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            slots[i].base = (uintptr_t)base & ~(page_size - 1);
            slots[i].end = ((uintptr_t)base + size + page_size - 1) & ~(page_size - 1);
            __atomic_store_n(&slots[i].damaged, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slots[i].state, SLOT_ACTIVE, __ATOMIC_RELEASE);
            *slot = (int)i;
            return LRQ_OK;
        }
    }
    return LRQ_ERR_MEMORY;
}

int lrq_mapping_damaged(const int slot)
{
    if (slot < 0 || slot >= LRQ_MAPPING_GUARD_MAX)
        return 0;
    return __atomic_load_n(&slots[slot].damaged, __ATOMIC_ACQUIRE);
}

void lrq_mapping_unguard(const int slot)
{
    if (slot >= 0 && slot < LRQ_MAPPING_GUARD_MAX)
        __atomic_store_n(&slots[slot].state, SLOT_FREE, __ATOMIC_RELEASE);
}
