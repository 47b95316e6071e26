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

/// `cpu`, `cuda` / `cuda:N` (GPU N; an error without one) or `auto` (GPU 0
/// when this build has CUDA and a GPU answers, else the CPU). A fallback of
/// `auto` to the CPU is silent here; [`resolve_device`] says why.
pub fn device(choice: &str) -> Result<Device, String> {
    resolve_device(choice).map(|(d, _)| d)
}

/// [`device`], with a one-line notice when `auto` fell back to the CPU.
pub fn resolve_device(choice: &str) -> Result<(Device, Option<String>), String> {
    match choice {
        "cpu" => Ok((Device::Cpu, None)),
        "auto" if !cfg!(feature = "cuda") => Ok((
            Device::Cpu,
            Some("device `auto`: this mpx was built without CUDA; running on the CPU".into()),
        )),
        "auto" => match Device::new_cuda(0) {
            Ok(d) => Ok((d, None)),
            Err(e) => Ok((
                Device::Cpu,
                Some(format!(
                    "device `auto`: no GPU answered ({}); running on the CPU",
                    first_line(&e.to_string())
                )),
            )),
        },
        _ => gpu(choice).map(|d| (d, None)),
    }
}

/// `cuda` or `cuda:N`.
fn gpu(choice: &str) -> Result<Device, String> {
    let Some(index) = choice.strip_prefix("cuda") else {
        return Err(format!(
            "unknown device `{choice}`: expected `cpu`, `cuda`, `cuda:N` or `auto`"
        ));
    };
    let index = match index {
        "" => 0,
        n => n
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                format!("unknown device `{choice}`: a GPU is `cuda:N`, as in `cuda:0`")
            })?,
    };
    if !cfg!(feature = "cuda") {
        return Err(format!(
            "device `{choice}`: this mpx was built without CUDA; build it with \
             `cargo build --release --features cuda` (README, \"CUDA\") or use `cpu`"
        ));
    }
    Device::new_cuda(index).map_err(|e| {
        format!(
            "device `{choice}`: no such GPU ({})",
            first_line(&e.to_string())
        )
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_works_and_names_are_checked() {
        assert!(device("cpu").unwrap().is_cpu());
        assert!(device("tpu")
            .unwrap_err()
            .contains("expected `cpu`, `cuda`, `cuda:N` or `auto`"));
        assert!(device("cuda:x").unwrap_err().contains("`cuda:0`"));
        assert!(device("cuda0").unwrap_err().contains("`cuda:0`"));
        #[cfg(not(feature = "cuda"))]
        {
            let (d, notice) = resolve_device("auto").unwrap();
            assert!(d.is_cpu());
            assert!(notice.unwrap().contains("without CUDA"));
            for gpu in ["cuda", "cuda:0", "cuda:3"] {
                let e = device(gpu).unwrap_err();
                assert!(
                    e.contains("built without CUDA") && e.contains("--features cuda"),
                    "{e}"
                );
            }
        }
    }
}
