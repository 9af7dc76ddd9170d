/* QEMU TCG plugin: counts guest instructions executed between calls of a marker function.
 *
 * Instructions are not cycles (QEMU has no cycle model and the DWT cycle counter reads 0), but they
 * are identical run to run, so they compare two builds of the same model (kiln vs TFLite Micro,
 * float vs int8). The firmware calls its marker (a noinline function, address from `nm`) before
 * and after the code to measure; each pair of calls prints one count:
 *
 *   qemu-system-arm ... -plugin ./libkiln_insn_count.so,mark=0x1234 -d plugin
 *   -> "kiln insns: window 1: 15768"
 *
 * With hist=FILE it also counts every instruction address (whole run, windows or not) and writes
 * "address count" lines to FILE at exit: a per-instruction profile that
 * tests/firmware/qemu/hist_by_function.py sums per function (nm) for the hot spots.
 *
 * Every executed instruction is counted inline (no callback per instruction); only the marker's
 * first instruction has a callback, which snapshots the running total. Written against QEMU's
 * plugin ABI version 1 (Debian bookworm's QEMU 7.2 ships no qemu-plugin.h, so the few
 * declarations used are restated here). Single vCPU (Cortex-M): plain counters.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct {
  const char* target_name;
  struct {
    int min;
    int cur;
  } version;
  bool system_emulation;
  union {
    struct {
      int smp_vcpus;
      int max_vcpus;
    } system;
  };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb*);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void*);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void* userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb*);
struct qemu_plugin_insn* qemu_plugin_tb_get_insn(const struct qemu_plugin_tb*, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn*);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn*, enum qemu_plugin_op, void*, uint64_t);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn*, qemu_plugin_vcpu_udata_cb_t,
                                            enum qemu_plugin_cb_flags, void*);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void*);
void qemu_plugin_outs(const char*);

EXPORT int qemu_plugin_version = 1;

static uint64_t total;     /* every executed instruction */
static uint64_t mark;      /* the marker function's address (Thumb bit cleared) */
static uint64_t opened;    /* total at the odd-numbered marker call */
static unsigned windows;   /* completed windows */
static bool in_window;
/* hist=FILE: one counter per halfword of the first 4 MiB of the address space (the mps2-an386
 * code memory), indexed by address / 2. */
#define HIST_SLOTS (4u << 20 >> 1)
static uint64_t* hist;
static char* hist_path;

static void on_mark(unsigned int vcpu, void* data) {
  (void)vcpu;
  (void)data;
  if (!in_window) {
    opened = total;
    in_window = true;
    return;
  }
  /* The marker's own instructions up to here belong to neither side; the count covers the
   * code between the two calls plus one call/return sequence (a constant). */
  char buf[96];
  snprintf(buf, sizeof buf, "kiln insns: window %u: %" PRIu64 "\n", ++windows, total - opened);
  qemu_plugin_outs(buf);
  in_window = false;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  const size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; ++i) {
    struct qemu_plugin_insn* insn = qemu_plugin_tb_get_insn(tb, i);
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
    const uint64_t addr = qemu_plugin_insn_vaddr(insn);
    if (hist && addr / 2 < HIST_SLOTS)
      qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &hist[addr / 2], 1);
    if (mark && qemu_plugin_insn_vaddr(insn) == mark)
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
  }
}

static void at_exit(qemu_plugin_id_t id, void* p) {
  (void)id;
  (void)p;
  char buf[96];
  snprintf(buf, sizeof buf, "kiln insns: total %" PRIu64 " (%u windows)\n", total, windows);
  qemu_plugin_outs(buf);
  if (hist) {
    FILE* f = fopen(hist_path, "w");
    if (!f) return;
    for (uint64_t k = 0; k < HIST_SLOTS; ++k)
      if (hist[k]) fprintf(f, "0x%" PRIx64 " %" PRIu64 "\n", k * 2, hist[k]);
    fclose(f);
  }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc, char** argv) {
  (void)info;
  for (int i = 0; i < argc; ++i) {
    if (!strncmp(argv[i], "mark=", 5)) {
      mark = strtoull(argv[i] + 5, NULL, 0) & ~(uint64_t)1;
    } else if (!strncmp(argv[i], "hist=", 5)) {
      hist_path = strdup(argv[i] + 5);
      hist = calloc(HIST_SLOTS, sizeof *hist);
      if (!hist_path || !hist) return -1;
    } else {
      fprintf(stderr, "kiln insn_count: unknown argument %s (expected mark=ADDR or hist=FILE)\n", argv[i]);
      return -1;
    }
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0;
}
