// abi.h -- the interface between compiled kernel modules and the emulator's runtime.
//
// The emulator builds two kinds of shared libraries:
//
// * the runtime (runtime.cpp), compiled once: it schedules the threads of a grid
//   (loops and fibers), implements barriers and warp collectives, and reports
//   errors;
// * one module per CUDA source (the source + cuda_shim.h): the kernels, and for
//   each a "thunk" that unpacks a cuLaunchKernel-style argument vector.
//
// Keeping the scheduler out of the modules keeps each module small: a module
// compiles in a fraction of the time it would take with the scheduler inlined.
// A module reads the built-in variables (threadIdx ...) through a pointer to
// the runtime's State for the running thread, and calls the fgemu_* functions
// below; both sides include this header.
#pragma once
#include <cstddef>
#include <cstdint>

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };  // an aggregate here: kernels only read gridDim/blockDim

namespace fgemu {

// What a running CUDA thread sees. The runtime updates it before running each thread
// (and before resuming each fiber), so the module always reads the current values.
struct State {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
};

// Calls the kernel for the current thread: args[i] points to parameter i's value.
typedef void (*Thunk)(void** args, const State* state);

// The launch configuration; Python fills a ctypes structure of the same layout.
struct LaunchConfig {
  unsigned grid[3], block[3];
  size_t shared_bytes;
  int fibers;     // run threads as fibers (kernels with barriers) or as plain calls
  int workers;    // OS threads running blocks in parallel
  size_t stack_kib;
  int strict;     // a barrier reached after some threads exited is an error
  int order;      // 0 forward, 1 reverse, 2 shuffled: the thread order between barriers
};

}  // namespace fgemu

extern "C" {
// Launch `thunk` on every thread of the grid; 0, or 1 with a message in errbuf.
int fgemu_launch(fgemu::Thunk thunk, void** args, const fgemu::LaunchConfig* config,
                 char* errbuf, size_t errlen);
// Called from kernels:
[[noreturn]] void fgemu_fail(const char* what);
[[noreturn]] void fgemu_out_of_bounds(const char* name, long long index, long long size);
void fgemu_block_barrier(int line);
// Warp collectives: every participating lane publishes `bits`, and gets lane src_lane's.
uint64_t fgemu_shuffle(unsigned mask, uint64_t bits, int src_lane);
unsigned fgemu_ballot(unsigned mask, int predicate);
void fgemu_warp_barrier(unsigned mask);
int fgemu_lane();
void* fgemu_dynamic_shared();
// Fill a static __shared__ array with 0xff bytes, once per block (the first call wins).
void fgemu_poison_shared(void* address, size_t bytes);
}
