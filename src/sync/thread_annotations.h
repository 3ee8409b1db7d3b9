// Clang thread-safety annotations (-Wthread-safety). Empty for other
// compilers; the clang "tsa" preset turns every violation into an error.
#pragma once

#if defined(__clang__)
#define VFIOMM_TSA(x) __attribute__((x))
#else
#define VFIOMM_TSA(x)
#endif

#define CAPABILITY(x) VFIOMM_TSA(capability(x))
#define SCOPED_CAPABILITY VFIOMM_TSA(scoped_lockable)
#define GUARDED_BY(x) VFIOMM_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) VFIOMM_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) VFIOMM_TSA(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) VFIOMM_TSA(acquired_after(__VA_ARGS__))
#define REQUIRES(...) VFIOMM_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) VFIOMM_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) VFIOMM_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) VFIOMM_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) VFIOMM_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) VFIOMM_TSA(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) VFIOMM_TSA(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) VFIOMM_TSA(try_acquire_capability(__VA_ARGS__))
#define TRY_ACQUIRE_SHARED(...) VFIOMM_TSA(try_acquire_shared_capability(__VA_ARGS__))
#define EXCLUDES(...) VFIOMM_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) VFIOMM_TSA(assert_capability(x))
#define ASSERT_SHARED_CAPABILITY(x) VFIOMM_TSA(assert_shared_capability(x))
#define RETURN_CAPABILITY(x) VFIOMM_TSA(lock_returned(x))
// Every use carries a comment saying why the analysis cannot follow.
#define NO_THREAD_SAFETY_ANALYSIS VFIOMM_TSA(no_thread_safety_analysis)
