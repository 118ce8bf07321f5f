// runtime.cpp -- how the emulator runs the threads of a CUDA grid on the CPU.
//
// Compiled once into a shared library that every kernel module calls (see abi.h).
// A launch runs the blocks of the grid one after another. Inside a block, the
// CUDA threads run in one of two modes:
//
// * loop mode: each thread is a plain function call, one after the other
//   (about 20 ns per thread). Correct for every kernel without barriers,
//   because CUDA promises nothing about the order of threads between them.
// * fiber mode: each thread is a fiber (a coroutine with its own small stack).
//   The scheduler runs every runnable fiber until it blocks at a barrier
//   (__syncthreads) or a warp collective (__shfl_sync ...), then releases the
//   barrier once every live thread of the block (or of the warp) waits at it.
//   That is exactly the guarantee CUDA gives, so shared-memory reductions work.
//
// The Python side (emulator/__init__.py) picks the mode per kernel: fibers
// only when the kernel (or a __device__ function it calls) has a barrier.
// Errors (a divergent barrier, __trap, an out-of-bounds index in a checked
// build) end the launch and come back to Python as a message, never a crash.
#include <atomic>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sys/mman.h>
#include <thread>
#include <ucontext.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "abi.h"

namespace fgemu {

// ---- the context switch ------------------------------------------------------
// x86-64: a hand-written switch that saves the six callee-saved registers and
// swaps stack pointers (~10 ns). Elsewhere, glibc's swapcontext, which also
// saves the signal mask with a syscall on every switch (about 13x slower).
#if defined(__x86_64__) && !defined(FGEMU_USE_UCONTEXT)
#define FGEMU_FAST_SWITCH 1
extern "C" void fgemu_swap_x64(void** save_sp, void* load_sp);
asm(R"(
  .text
  .p2align 4
  .hidden fgemu_swap_x64
  .globl fgemu_swap_x64
  .type fgemu_swap_x64,@function
fgemu_swap_x64:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size fgemu_swap_x64, .-fgemu_swap_x64
)");
struct Context { void* sp; };
#else
struct Context { ucontext_t uc; };
#endif


enum FiberState { RUNNABLE = 0, AT_BLOCK_BARRIER = 1, AT_WARP_BARRIER = 2, DONE = 3 };

struct Fiber {
  Context ctx;
  int state;
  int line;        // source line of the __syncthreads() it waits at
  long barriers;   // how many block barriers it passed (must agree across threads)
  unsigned mask;   // lanes taking part in the warp collective it waits at
};

// One per OS thread: runs one block at a time.
struct Worker {
  Thunk thunk = nullptr;
  void** args = nullptr;
  State state;                  // what the running CUDA thread reads as threadIdx ...
  bool fibers = false;
  int nthreads = 0, current = 0;
  std::vector<Fiber> threads;
  Context scheduler;
  char* stacks = nullptr;
  size_t stack_bytes = 0, stacks_total = 0;
  std::vector<uint64_t> slots;  // one per thread: values exchanged by warp collectives
  std::vector<char> dynamic_shared;
  std::vector<void*> poisoned;  // static __shared__ arrays already poisoned in this block
  jmp_buf loop_escape;          // where a failing thread jumps in loop mode
  bool error = false;
  char message[512] = {0};
  ~Worker() { if (stacks) munmap(stacks, stacks_total); }
};
thread_local Worker* W = nullptr;

void to_scheduler(Fiber& t) {
#ifdef FGEMU_FAST_SWITCH
  fgemu_swap_x64(&t.ctx.sp, W->scheduler.sp);
#else
  swapcontext(&t.ctx.uc, &W->scheduler.uc);
#endif
}

void to_fiber(Worker* w, Fiber& t) {
#ifdef FGEMU_FAST_SWITCH
  fgemu_swap_x64(&w->scheduler.sp, t.ctx.sp);
#else
  swapcontext(&w->scheduler.uc, &t.ctx.uc);
#endif
}

// Make thread `t` of the block the current one (what threadIdx reads).
void enter_thread(Worker* w, int t) {
  const dim3& d = w->state.block_dim;
  unsigned u = (unsigned)t;
  w->current = t;
  w->state.thread = {u % d.x, (u / d.x) % d.y, u / (d.x * d.y)};
}

void record_error(Worker* w, const char* what) {
  if (w->error) return;
  const uint3 &b = w->state.block, &t = w->state.thread;
  w->error = true;
  snprintf(w->message, sizeof w->message, "%s (block %u,%u,%u, thread %u,%u,%u)", what,
           b.x, b.y, b.z, t.x, t.y, t.z);
}

void wait_at(Worker* w, int state) {
  Fiber& t = w->threads[w->current];
  t.state = state;
  to_scheduler(t);
}

void fiber_entry() {
  Worker* w = W;
  w->thunk(w->args, &w->state);
  wait_at(w, DONE);  // never resumed
  __builtin_trap();
}

void run_block_loop(Worker* w) {
  if (setjmp(w->loop_escape)) return;  // a failing thread lands here
  for (int t = 0; t < w->nthreads; ++t) {
    enter_thread(w, t);
    w->thunk(w->args, &w->state);
  }
}

void start_fibers(Worker* w) {
  size_t page = getpagesize();
  for (int t = 0; t < w->nthreads; ++t) {
    Fiber& f = w->threads[t];
    f.state = RUNNABLE;
    f.barriers = 0;
    f.line = 0;
    f.mask = 0;
    char* low = w->stacks + (size_t)t * w->stack_bytes + page;  // above the guard page
    size_t size = w->stack_bytes - page;
#ifdef FGEMU_FAST_SWITCH
    // A fresh stack that the switch "returns" into fiber_entry from: the return address,
    // then six zeroed callee-saved registers; rsp % 16 == 8 on entry, as after a call.
    uintptr_t top = ((uintptr_t)(low + size)) & ~(uintptr_t)15;
    void** sp = (void**)(top - 16);
    sp[0] = (void*)&fiber_entry;
    sp -= 6;
    for (int r = 0; r < 6; ++r) sp[r] = nullptr;
    f.ctx.sp = sp;
#else
    getcontext(&f.ctx.uc);
    f.ctx.uc.uc_stack.ss_sp = low;
    f.ctx.uc.uc_stack.ss_size = size;
    f.ctx.uc.uc_link = nullptr;
    makecontext(&f.ctx.uc, (void (*)())fiber_entry, 0);
#endif
  }
}

// Release the warp collectives whose participating lanes have all arrived.
bool release_warps(Worker* w) {
  bool released = false;
  for (int t = 0; t < w->nthreads; ++t) {
    Fiber& a = w->threads[t];
    if (a.state != AT_WARP_BARRIER) continue;
    int base = t - t % 32;
    bool ready = true;
    for (int l = 0; l < 32 && base + l < w->nthreads; ++l) {
      int s = w->threads[base + l].state;
      if ((a.mask >> l & 1u) && (s == RUNNABLE || s == AT_BLOCK_BARRIER)) { ready = false; break; }
    }
    if (!ready) continue;
    for (int l = 0; l < 32 && base + l < w->nthreads; ++l)
      if ((a.mask >> l & 1u) && w->threads[base + l].state == AT_WARP_BARRIER) {
        w->threads[base + l].state = RUNNABLE;
        released = true;
      }
  }
  return released;
}

// Release a block barrier once every live thread waits at the same __syncthreads().
// Returns false (with the error recorded) when the threads disagree about which one.
bool release_block_barrier(Worker* w, int ndone, bool strict) {
  const uint3& b = w->state.block;
  int line = -1;
  long count = -1;
  for (int t = 0; t < w->nthreads; ++t) {
    Fiber& a = w->threads[t];
    if (a.state != AT_BLOCK_BARRIER) continue;
    if (line < 0) { line = a.line; count = a.barriers; continue; }
    if (a.line != line || a.barriers != count) {
      w->error = true;
      snprintf(w->message, sizeof w->message,
               "divergent __syncthreads(): thread %d waits at line %d (barrier #%ld), others at "
               "line %d (#%ld), block %u,%u,%u", t, a.line, a.barriers, line, count, b.x, b.y, b.z);
      return false;
    }
  }
  if (ndone && strict) {
    w->error = true;
    snprintf(w->message, sizeof w->message,
             "__syncthreads() at line %d reached after %d thread(s) of block %u,%u,%u exited "
             "(strict mode)", line, ndone, b.x, b.y, b.z);
    return false;
  }
  for (int t = 0; t < w->nthreads; ++t)
    if (w->threads[t].state == AT_BLOCK_BARRIER) w->threads[t].state = RUNNABLE;
  return true;
}

// Run the block's fibers round by round: each round runs every runnable fiber up to
// its next barrier, then releases whichever barrier is complete.
void run_block_fibers(Worker* w, bool strict, int order) {
  int n = w->nthreads;
  const uint3& b = w->state.block;
  start_fibers(w);
  std::vector<int> perm(n);
  for (int t = 0; t < n; ++t) perm[t] = order == 1 ? n - 1 - t : t;
  uint64_t rs = 0x9E3779B97F4A7C15ull ^ ((uint64_t)b.x << 32 | b.y << 16 | b.z);
  for (;;) {
    if (order == 2)  // Fisher-Yates with xorshift: a different, reproducible order each round
      for (int t = n - 1; t > 0; --t) {
        rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
        std::swap(perm[t], perm[rs % (t + 1)]);
      }
    for (int q = 0; q < n; ++q) {
      int t = perm[q];
      if (w->threads[t].state != RUNNABLE) continue;
      enter_thread(w, t);
      to_fiber(w, w->threads[t]);
      if (w->error) return;
    }
    int ndone = 0, nblocked = 0;
    for (int t = 0; t < n; ++t) {
      ndone += w->threads[t].state == DONE;
      nblocked += w->threads[t].state == AT_BLOCK_BARRIER;
    }
    if (ndone == n) return;
    if (release_warps(w)) continue;
    if (nblocked + ndone == n) {
      if (!release_block_barrier(w, ndone, strict)) return;
      continue;
    }
    w->error = true;
    snprintf(w->message, sizeof w->message, "deadlock: a warp collective waits for lanes that "
             "sit at __syncthreads() or exited, block %u,%u,%u", b.x, b.y, b.z);
    return;
  }
}

bool allocate_fibers(Worker& w, const LaunchConfig* c) {
  size_t page = getpagesize();
  w.stack_bytes = ((c->stack_kib * 1024 + page - 1) / page) * page + page;  // + guard page
  w.stacks_total = w.stack_bytes * w.nthreads;
  w.stacks = (char*)mmap(nullptr, w.stacks_total, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (w.stacks == MAP_FAILED) { w.stacks = nullptr; return false; }
  for (int t = 0; t < w.nthreads; ++t) mprotect(w.stacks + t * w.stack_bytes, page, PROT_NONE);
  w.threads.resize(w.nthreads);
  w.slots.assign(w.nthreads, 0);
  return true;
}

// Blocks are handed out through `next`; each worker runs them until none are left or
// one failed (then the first message wins).
void work(Thunk thunk, void** args, const LaunchConfig* c, std::atomic<long>& next,
          std::atomic<int>& failed, std::mutex& lock, char* errbuf, size_t errlen) {
  Worker w;
  W = &w;
  w.thunk = thunk;
  w.args = args;
  w.fibers = c->fibers;
  w.nthreads = (int)(c->block[0] * c->block[1] * c->block[2]);
  w.state.block_dim = {c->block[0], c->block[1], c->block[2]};
  w.state.grid_dim = {c->grid[0], c->grid[1], c->grid[2]};
  const long nblocks = (long)c->grid[0] * c->grid[1] * c->grid[2];
  if (w.fibers && !allocate_fibers(w, c)) record_error(&w, "could not map the fiber stacks");
  w.dynamic_shared.resize(c->shared_bytes + 16);
  for (long b; !w.error && !failed && (b = next.fetch_add(1)) < nblocks;) {
    w.state.block = {(unsigned)(b % c->grid[0]), (unsigned)((b / c->grid[0]) % c->grid[1]),
                     (unsigned)(b / ((long)c->grid[0] * c->grid[1]))};
    // poison: uninitialised shared floats read as NaN (static arrays: fgemu_poison_shared)
    memset(w.dynamic_shared.data(), 0xff, w.dynamic_shared.size());
    w.poisoned.clear();
    if (w.fibers) run_block_fibers(&w, c->strict, c->order); else run_block_loop(&w);
  }
  if (w.error) {
    std::lock_guard<std::mutex> g(lock);
    if (!failed.exchange(1)) snprintf(errbuf, errlen, "%s", w.message);
  }
  W = nullptr;
}

}  // namespace fgemu

using namespace fgemu;

extern "C" int fgemu_launch(Thunk thunk, void** args, const LaunchConfig* c, char* errbuf,
                            size_t errlen) {
  const unsigned long nthreads = (unsigned long)c->block[0] * c->block[1] * c->block[2];
  const long nblocks = (long)c->grid[0] * c->grid[1] * c->grid[2];
  if (nthreads == 0 || nthreads > 1024 || nblocks == 0) {
    snprintf(errbuf, errlen, "invalid launch configuration: grid (%u,%u,%u), block (%u,%u,%u) "
             "(CUDA needs 1 to 1024 threads per block and a non-empty grid)", c->grid[0],
             c->grid[1], c->grid[2], c->block[0], c->block[1], c->block[2]);
    return 1;
  }
  std::atomic<long> next{0};
  std::atomic<int> failed{0};
  std::mutex lock;
  if (c->workers <= 1) {
    work(thunk, args, c, next, failed, lock, errbuf, errlen);
  } else {
    std::vector<std::thread> pool;
    for (int i = 0; i < c->workers; ++i)
      pool.emplace_back([&] { work(thunk, args, c, next, failed, lock, errbuf, errlen); });
    for (auto& t : pool) t.join();
  }
  return failed.load();
}

// End the launch with an error: record the first message, then leave the thread for
// good (its fiber is never resumed; in loop mode, jump back to the block loop).
extern "C" void fgemu_fail(const char* what) {
  Worker* w = W;
  record_error(w, what);
  if (w->fibers) wait_at(w, DONE);
  longjmp(w->loop_escape, 1);
}

extern "C" void fgemu_out_of_bounds(const char* name, long long index, long long size) {
  char what[256];
  snprintf(what, sizeof what, "out-of-bounds access %s[%lld] (the buffer has %lld elements)",
           name, index, size);
  fgemu_fail(what);
}

extern "C" void fgemu_block_barrier(int line) {
  Worker* w = W;
  if (!w->fibers) fgemu_fail("__syncthreads() in a kernel launched in loop mode");
  Fiber& t = w->threads[w->current];
  t.line = line;
  t.barriers++;
  wait_at(w, AT_BLOCK_BARRIER);
}

extern "C" void fgemu_warp_barrier(unsigned mask) {
  Worker* w = W;
  if (!w->fibers) fgemu_fail("warp collective in a kernel launched in loop mode");
  w->threads[w->current].mask = mask;
  wait_at(w, AT_WARP_BARRIER);
}

// The second rendezvous keeps a fast lane from overwriting its slot before all have read.
extern "C" uint64_t fgemu_shuffle(unsigned mask, uint64_t bits, int src_lane) {
  Worker* w = W;
  int me = w->current, src = me - me % 32 + src_lane;
  w->slots[me] = bits;
  fgemu_warp_barrier(mask);
  uint64_t r = (src_lane >= 0 && src_lane < 32 && src < w->nthreads) ? w->slots[src] : bits;
  fgemu_warp_barrier(mask);
  return r;
}

extern "C" unsigned fgemu_ballot(unsigned mask, int predicate) {
  Worker* w = W;
  int me = w->current, base = me - me % 32;
  unsigned r = 0;
  w->slots[me] = predicate != 0;
  fgemu_warp_barrier(mask);
  for (int l = 0; l < 32 && base + l < w->nthreads; ++l)
    if ((mask >> l & 1u) && w->slots[base + l]) r |= 1u << l;
  fgemu_warp_barrier(mask);
  return r;
}

extern "C" int fgemu_lane() { return W->current % 32; }

extern "C" void* fgemu_dynamic_shared() { return W->dynamic_shared.data(); }

extern "C" void fgemu_poison_shared(void* address, size_t bytes) {
  std::vector<void*>& done = W->poisoned;
  for (void* p : done)
    if (p == address) return;
  done.push_back(address);
  memset(address, 0xff, bytes);
}
