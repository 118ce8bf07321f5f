// cuda_shim.h -- enough of CUDA C for g++ to compile a kernel source as host C++.
//
// The emulator (emulator/__init__.py) compiles the *same* source text that NVRTC
// compiles for the GPU with `g++ -include cuda_shim.h`, so the numerics of the
// generated CUDA C can be tested on a machine without a GPU. This header maps:
//
// * the qualifiers (__global__, __device__, __shared__ ...) to plain C++;
//   __shared__ becomes `static thread_local`: one copy per OS thread, and an OS
//   thread runs one block at a time, so that is one copy per running block;
// * the built-in variables (threadIdx ...) to the runtime's per-thread State, and
//   barriers and warp collectives to calls into the runtime (runtime.cpp, abi.h);
// * the device math library to libm (the GPU's fast intrinsics such as __expf
//   differ from libm by a few ulps; compare with a tolerance);
// * atomics to GCC's __atomic builtins;
// * pointer parameters, in a checked build, to fgemu::checked_ptr<T>: the Python side
//   rewrites `float* __restrict__ x` in each kernel's signature to
//   `fgemu::checked_ptr<float> x`, which knows its buffer's size and turns an
//   out-of-bounds index into an error naming the buffer and the index.
//
// Each kernel gets an exported thunk (FGEMU_EXPORT, appended by Python) that
// unpacks a void** argument vector like cuLaunchKernel, and a signature string
// that Python checks arguments against.
#pragma once
#include <cmath>
#include <cstring>
#include <math.h>  // with libstdc++: the float overloads of exp, log ... in the global namespace
#include <type_traits>
#include <utility>

#include "abi.h"

// ---- built-in variables: read through the runtime's State of the running thread ------
namespace fgemu {
static thread_local const State* state;  // set by the thunk that starts each thread
}
#define threadIdx (fgemu::state->thread)
#define blockIdx (fgemu::state->block)
#define blockDim (fgemu::state->block_dim)
#define gridDim (fgemu::state->grid_dim)
constexpr int warpSize = 32;

// ---- qualifiers ----------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __constant__
#define __shared__ static thread_local
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __FGEMU__ 1

// ---- vector and half types -------------------------------------------------------
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct int2 { int x, y; };
struct int4 { int x, y, z, w; };
static inline float2 make_float2(float x, float y) { return {x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
static inline int2 make_int2(int x, int y) { return {x, y}; }
static inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
typedef _Float16 __half;  // GCC's IEEE binary16: the storage and rounding of CUDA's __half
typedef _Float16 half;
static inline __half __float2half(float x) { return (__half)x; }
static inline float __half2float(__half x) { return (float)x; }

// ---- math ------------------------------------------------------------------------
using std::isfinite; using std::isinf; using std::isnan; using std::signbit;

// CUDA's min/max overloads cover every pair of arithmetic types, computing in the wider
// one; floats follow fminf/fmaxf (a NaN operand yields the other operand).
template <class A, class B> static inline std::common_type_t<A, B> min(A a, B b) {
  using T = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<T>) return std::fmin((T)a, (T)b);
  else return (T)a < (T)b ? (T)a : (T)b;
}
template <class A, class B> static inline std::common_type_t<A, B> max(A a, B b) {
  using T = std::common_type_t<A, B>;
  if constexpr (std::is_floating_point_v<T>) return std::fmax((T)a, (T)b);
  else return (T)a > (T)b ? (T)a : (T)b;
}
// Fast-math intrinsics as the accurate libm functions. Macros, because glibc already
// declares functions named __expf, __logf ... with other meanings.
#define __expf(x) expf(x)
#define __exp10f(x) exp10f(x)
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __powf(x, y) powf(x, y)
static inline float __fdividef(float x, float y) { return x / y; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
static inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }

// ---- bit casts and integer intrinsics -----------------------------------------------
template <class To, class From> static inline To fgemu_bit_cast(From x) {
  static_assert(sizeof(To) == sizeof(From), "bit cast between types of different sizes");
  To y;
  memcpy(&y, &x, sizeof(To));
  return y;
}
static inline int __float_as_int(float f) { return fgemu_bit_cast<int>(f); }
static inline unsigned __float_as_uint(float f) { return fgemu_bit_cast<unsigned>(f); }
static inline float __int_as_float(int i) { return fgemu_bit_cast<float>(i); }
static inline float __uint_as_float(unsigned i) { return fgemu_bit_cast<float>(i); }
static inline long long __double_as_longlong(double d) { return fgemu_bit_cast<long long>(d); }
static inline double __longlong_as_double(long long i) { return fgemu_bit_cast<double>(i); }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float2int_rz(float x) { return (int)x; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
static inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}

// ---- checked pointers ------------------------------------------------------------------
namespace fgemu {

// A kernel pointer parameter in a checked build. Python passes {base, 0, size, name}; an
// index, a dereference or an atomic outside [0, size) fails the launch before memory is
// touched. Pointer arithmetic keeps the check (`x + k` is a checked_ptr too); converting
// to a plain T* (passing it to a __device__ function taking T*) drops it.
template <class T> struct checked_ptr {
  T* base;
  long long offset;  // moved by pointer arithmetic
  long long size;
  const char* name;

  T* at(long long k) const {
    if (k < 0 || k >= size) fgemu_out_of_bounds(name, k, size);
    return base + k;
  }
  template <class I> T& operator[](I i) const { return *at(offset + (long long)i); }
  T& operator*() const { return *at(offset); }
  template <class I> checked_ptr operator+(I n) const { return {base, offset + (long long)n, size, name}; }
  template <class I> checked_ptr operator-(I n) const { return {base, offset - (long long)n, size, name}; }
  operator T*() const { return base + offset; }
};
template <class T> inline T* address(T* p) { return p; }
template <class T> inline T* address(checked_ptr<T> p) { return p.at(p.offset); }
template <class T> struct same { using type = T; };  // blocks deduction from the value argument

}  // namespace fgemu

template <class T> static inline T __ldg(const T* p) { return *p; }
template <class T> static inline T __ldg(fgemu::checked_ptr<const T> p) { return *p; }

// ---- barriers and warp collectives: calls into the runtime --------------------------
// __LINE__ lets the runtime tell one __syncthreads() from another (divergence check).
#define __syncthreads() fgemu_block_barrier(__LINE__)
static inline void __syncwarp(unsigned mask = 0xffffffffu) { fgemu_warp_barrier(mask); }
namespace fgemu {
template <class T> inline T shuffle(unsigned mask, T v, int src_lane) {
  static_assert(sizeof(T) <= 8, "warp shuffle of a value wider than 8 bytes");
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof(T));
  bits = fgemu_shuffle(mask, bits, src_lane);
  memcpy(&v, &bits, sizeof(T));
  return v;
}
}  // namespace fgemu
template <class T> static inline T __shfl_sync(unsigned m, T v, int src, int width = 32) {
  int lane = fgemu_lane();
  return fgemu::shuffle(m, v, (lane / width) * width + (src % width));
}
template <class T> static inline T __shfl_down_sync(unsigned m, T v, unsigned d, int width = 32) {
  int lane = fgemu_lane();
  return fgemu::shuffle(m, v, (lane % width) + (int)d >= width ? lane : lane + (int)d);
}
template <class T> static inline T __shfl_up_sync(unsigned m, T v, unsigned d, int width = 32) {
  int lane = fgemu_lane();
  return fgemu::shuffle(m, v, (lane % width) < (int)d ? lane : lane - (int)d);
}
template <class T> static inline T __shfl_xor_sync(unsigned m, T v, int x, int width = 32) {
  int lane = fgemu_lane(), src = lane ^ x;
  return fgemu::shuffle(m, v, src / width > lane / width ? lane : src);
}
static inline unsigned __ballot_sync(unsigned m, int pred) { return fgemu_ballot(m, pred); }
static inline int __any_sync(unsigned m, int p) { return fgemu_ballot(m, p) != 0; }
static inline int __all_sync(unsigned m, int p) { return fgemu_ballot(m, p) == fgemu_ballot(m, 1); }
static inline void __trap() { fgemu_fail("__trap() called"); }
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() {}

// ---- atomics: __atomic builtins; float add, max and min as compare-and-swap loops -------
template <class T> static inline T atomicAdd(T* p, typename fgemu::same<T>::type v) {
  if constexpr (std::is_floating_point_v<T>) {
    T old, next;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do { next = old + v; } while (!__atomic_compare_exchange(p, &old, &next, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    return old;
  } else {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
  }
}
template <class T> static inline T atomicSub(T* p, typename fgemu::same<T>::type v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }
template <class T> static inline T atomicAnd(T* p, typename fgemu::same<T>::type v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }
template <class T> static inline T atomicOr(T* p, typename fgemu::same<T>::type v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }
template <class T> static inline T atomicXor(T* p, typename fgemu::same<T>::type v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); }
template <class T> static inline T atomicExch(T* p, typename fgemu::same<T>::type v) {
  T old;
  __atomic_exchange(p, &v, &old, __ATOMIC_SEQ_CST);
  return old;
}
template <class T> static inline T atomicCAS(T* p, typename fgemu::same<T>::type expected, typename fgemu::same<T>::type v) {
  __atomic_compare_exchange(p, &expected, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected;
}
template <class T> static inline T atomicMax(T* p, typename fgemu::same<T>::type v) {
  T old;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange(p, &old, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {}
  return old;
}
template <class T> static inline T atomicMin(T* p, typename fgemu::same<T>::type v) {
  T old;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  while (old > v && !__atomic_compare_exchange(p, &old, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {}
  return old;
}
// The same atomics on a checked pointer: check the address, then the plain version.
#define FGEMU_CHECKED_ATOMIC(name)                                                       \
  template <class T, class... V> static inline T name(fgemu::checked_ptr<T> p, V... v) { \
    return name(fgemu::address(p), v...);                                                \
  }
FGEMU_CHECKED_ATOMIC(atomicAdd) FGEMU_CHECKED_ATOMIC(atomicSub) FGEMU_CHECKED_ATOMIC(atomicAnd)
FGEMU_CHECKED_ATOMIC(atomicOr) FGEMU_CHECKED_ATOMIC(atomicXor) FGEMU_CHECKED_ATOMIC(atomicExch)
FGEMU_CHECKED_ATOMIC(atomicCAS) FGEMU_CHECKED_ATOMIC(atomicMax) FGEMU_CHECKED_ATOMIC(atomicMin)

// ---- the thunk and the signature of each kernel ----------------------------------------
namespace fgemu {

template <class T> struct is_checked : std::false_type {};
template <class T> struct is_checked<checked_ptr<T>> : std::true_type { using pointee = T; };

// A scalar type as kind (f float, i signed, u unsigned, b bool, o other) and byte size.
template <class V> constexpr char kind() {
  using U = std::remove_cv_t<V>;
  if constexpr (std::is_same_v<U, bool>) return 'b';
  else if constexpr (std::is_floating_point_v<U> || std::is_same_v<U, _Float16>) return 'f';
  else if constexpr (std::is_integral_v<U>) return std::is_signed_v<U> ? 'i' : 'u';
  else return 'o';
}
template <class V> constexpr int bytes() {  // 0 for void and for types wider than 9 bytes
  if constexpr (std::is_void_v<V>) return 0; else return sizeof(V) <= 9 ? sizeof(V) : 0;
}
template <class V> void put_scalar(char*& end) {
  *end++ = kind<V>();
  *end++ = (char)('0' + bytes<V>());
}
// Appends one parameter's code: "p:f4" (pointer to float), "c:f4" (checked pointer to
// float) or "i4" (int), and a comma.
template <class P> void describe(char* out) {
  using U = std::remove_cv_t<P>;
  char* end = out + strlen(out);
  if constexpr (std::is_pointer_v<U> || is_checked<U>::value) {
    *end++ = std::is_pointer_v<U> ? 'p' : 'c';
    *end++ = ':';
    if constexpr (std::is_pointer_v<U>) put_scalar<std::remove_pointer_t<U>>(end);
    else put_scalar<typename is_checked<U>::pointee>(end);
  } else {
    put_scalar<U>(end);
  }
  *end = ',';
}

template <class F> struct Kernel;
template <class... A> struct Kernel<void (*)(A...)> {
  template <void (*fn)(A...), size_t... I> static void call(void** a, std::index_sequence<I...>) {
    fn(*reinterpret_cast<std::remove_cv_t<A>*>(a[I])...);
  }
  template <void (*fn)(A...)> static void thunk(void** args, const State* s) {
    state = s;
    call<fn>(args, std::index_sequence_for<A...>{});
  }
  static const char* signature() {
    static char s[5 * sizeof...(A) + 1] = {};
    if (!s[0]) (describe<A>(s), ...);
    return s;
  }
};

}  // namespace fgemu

#define FGEMU_EXPORT(name)                                                                 \
  extern "C" void fgemu_thunk_##name(void** args, const fgemu::State* s) {                 \
    fgemu::Kernel<decltype(&name)>::thunk<&name>(args, s);                                 \
  }                                                                                        \
  extern "C" const char* fgemu_signature_##name() {                                        \
    return fgemu::Kernel<decltype(&name)>::signature();                                    \
  }
