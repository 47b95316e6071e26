//! Which `gemm` entry point a product calls: `gemm::gemm` (the widest
//! kernels the CPU has), or the same driver with its AVX2+FMA kernel table
//! when `MPX_SIMD=avx2` asks for the kernels of a CPU without AVX-512.

#![allow(unsafe_code)]

use gemm::Parallelism;

/// `gemm::gemm`'s signature.
pub(super) type GemmFn = unsafe fn(
    usize,
    usize,
    usize,
    *mut f32,
    isize,
    isize,
    bool,
    *const f32,
    isize,
    isize,
    *const f32,
    isize,
    isize,
    f32,
    f32,
    bool,
    bool,
    bool,
    Parallelism,
);

/// `gemm::gemm`, or its AVX2 kernels when `avx2` asks for them and the CPU
/// has them.
pub(super) fn gemm_fn(avx2: bool) -> GemmFn {
    #[cfg(target_arch = "x86_64")]
    {
        use gemm_common::simd::{MixedSimd, V3};
        if avx2 && <V3 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some() {
            return avx2_gemm;
        }
    }
    let _ = avx2;
    gemm::gemm::<f32>
}

/// `gemm::gemm` for f32 with its AVX2+FMA kernels whatever the CPU has
/// (`MPX_SIMD=avx2`): the same steps as `gemm::gemm` (transpose a
/// column-major output, then the generic driver) with the kernel table
/// `gemm` itself picks on a CPU without AVX-512. Strides are never negative
/// here.
#[cfg(target_arch = "x86_64")]
#[allow(
    clippy::too_many_arguments,
    clippy::fn_params_excessive_bools,
    clippy::similar_names
)]
unsafe fn avx2_gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
    alpha: f32,
    beta: f32,
    _: bool,
    _: bool,
    _: bool,
    parallelism: Parallelism,
) {
    use gemm_common::simd::{MixedSimd, V3};
    use gemm_f32::microkernel::fma::f32::{H_M, H_N, H_UKR, MR_DIV_N, NR, UKR};
    const N: usize = 8;
    let v3 = <V3 as MixedSimd<f32, f32, f32, f32>>::try_new().expect("checked by gemm_fn");
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) =
        if dst_cs.abs() < dst_rs.abs() {
            (
                n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs,
            )
        } else {
            (
                m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs,
            )
        };
    gemm_common::gemm::gemm_basic_generic::<_, f32, N, { MR_DIV_N * N }, NR, MR_DIV_N, H_M, H_N>(
        v3,
        m,
        n,
        k,
        dst,
        dst_cs,
        dst_rs,
        read_dst,
        lhs,
        lhs_cs,
        lhs_rs,
        rhs,
        rhs_cs,
        rhs_rs,
        alpha,
        beta,
        false,
        false,
        false,
        |a, b, c| a * b + c,
        &UKR,
        &H_UKR,
        false,
        parallelism,
    );
}
