//! Choosing where tensors live: the CPU, or a CUDA GPU when mpx is built with
//! `--features cuda` (then `auto` prefers the GPU).

use candle_core::{DType, Device};

/// Tunes the process for training, once, before any tensor work: malloc
/// keeps freed activation buffers for the next step (`cpu::alloc`), and
/// candle's CPU threading suits this machine. candle runs element-wise ops on a pool whose idle workers spin; on
/// two cores they compete with the matrix-multiply threads, and one MPO step
/// got ~10% faster with the pool off (`examples/profile_step.rs`). Larger
/// machines keep the pool. An explicit `CANDLE_NUM_THREADS` wins.
pub fn tune_process() {
    super::cpu::keep_freed_memory();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if cores <= 2 && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// The dtype a name (`f32`, `bf16`, `f16`, as the language and the CLI
/// write it) stands for.
pub fn dtype(name: &str) -> Result<DType, String> {
    match name {
        "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::BF16),
        "f16" => Ok(DType::F16),
        other => Err(format!(
            "unknown dtype `{other}`: expected f32, bf16 or f16"
        )),
    }
}

/// `cpu`, `cuda` (GPU 0, an error without one) or `auto`.
pub fn device(choice: &str) -> Result<Device, String> {
    match choice {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(0).map_err(|e| {
            format!("no CUDA device: {e} (mpx must be built with `--features cuda` on a machine with a GPU)")
        }),
        "auto" => Device::cuda_if_available(0).map_err(|e| e.to_string()),
        other => Err(format!("unknown device `{other}`: expected `cpu`, `cuda` or `auto`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_works_and_names_are_checked() {
        assert!(device("cpu").unwrap().is_cpu());
        assert!(device("tpu")
            .unwrap_err()
            .contains("expected `cpu`, `cuda` or `auto`"));
        #[cfg(not(feature = "cuda"))]
        {
            assert!(device("auto").unwrap().is_cpu());
            assert!(device("cuda").is_err());
        }
    }
}
