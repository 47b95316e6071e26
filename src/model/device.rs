//! Choosing where tensors live: the CPU, or a CUDA GPU when mpx is built with
//! `--features cuda` (then `auto` prefers the GPU).

use candle_core::{DType, Device};

use super::DeviceError;

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
pub fn dtype(name: &str) -> Result<DType, DeviceError> {
    match name {
        "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::BF16),
        "f16" => Ok(DType::F16),
        other => Err(DeviceError::Dtype(other.to_owned())),
    }
}

/// A device as the language and the CLI write it, before any hardware is
/// asked: `cpu`, `cuda` (every GPU), `cuda:N` (GPU N), or `auto` (every
/// GPU when this build has CUDA and one answers, else the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Gpu(usize),
    AllGpus,
    Auto,
}

/// Reads a device name; the error says what names there are.
pub fn parse_device(choice: &str) -> Result<DeviceChoice, DeviceError> {
    match choice {
        "cpu" => Ok(DeviceChoice::Cpu),
        "auto" => Ok(DeviceChoice::Auto),
        "cuda" => Ok(DeviceChoice::AllGpus),
        _ => {
            let Some(index) = choice.strip_prefix("cuda") else {
                return Err(DeviceError::Name(choice.to_owned()));
            };
            index
                .strip_prefix(':')
                .and_then(|n| n.parse::<usize>().ok())
                .map(DeviceChoice::Gpu)
                .ok_or_else(|| DeviceError::Gpu(choice.to_owned()))
        }
    }
}

/// One device for `choice` (for `cuda` and `auto`, GPU 0).
pub fn device(choice: &str) -> Result<Device, DeviceError> {
    resolve_device(choice).map(|(d, _)| d)
}

/// [`device`], with a one-line notice when `auto` fell back to the CPU.
pub fn resolve_device(choice: &str) -> Result<(Device, Option<String>), DeviceError> {
    // One device is asked for: GPU 0 alone is opened, not every GPU.
    let (mut devices, notice) = open(choice, 1)?;
    Ok((devices.swap_remove(0).1, notice))
}

/// Devices by name (`cpu`, `cuda:N`).
pub type Devices = Vec<(String, Device)>;

/// The devices a run's stages use: the CPU, one GPU, or every GPU that
/// answers (`cuda`, and `auto` on a machine with GPUs; the executor gives
/// each its own slot). A GPU this build or machine lacks is an error; `auto`
/// falls back to the CPU with a one-line notice.
pub fn resolve_devices(choice: &str) -> Result<(Devices, Option<String>), DeviceError> {
    // A bound no machine reaches.
    open(choice, 64)
}

/// [`resolve_devices`], opening at most `most` GPUs.
fn open(choice: &str, most: usize) -> Result<(Devices, Option<String>), DeviceError> {
    let cpu = || vec![("cpu".to_owned(), Device::Cpu)];
    let parsed = parse_device(choice)?;
    if parsed == DeviceChoice::Cpu {
        return Ok((cpu(), None));
    }
    if !cfg!(feature = "cuda") {
        return match parsed {
            DeviceChoice::Auto => Ok((
                cpu(),
                Some("device `auto`: this mpx was built without CUDA; running on the CPU".into()),
            )),
            _ => Err(DeviceError::NoCuda(choice.to_owned())),
        };
    }
    match (open_gpus(parsed, most), parsed) {
        (Ok(gpus), _) => Ok((gpus, None)),
        (Err(why), DeviceChoice::Auto) => Ok((
            cpu(),
            Some(format!("device `auto`: {why}; running on the CPU")),
        )),
        (Err(why), _) => Err(DeviceError::Unavailable {
            choice: choice.to_owned(),
            why,
        }),
    }
}

/// GPU `i`, or the GPUs that answer, `most` at most.
fn open_gpus(choice: DeviceChoice, most: usize) -> Result<Devices, String> {
    let gpu = |i: usize| Device::new_cuda(i).map(|d| (format!("cuda:{i}"), d));
    let why = |e: &candle_core::Error| first_line(&e.to_string()).to_owned();
    if let DeviceChoice::Gpu(i) = choice {
        return gpu(i)
            .map(|d| vec![d])
            .map_err(|e| format!("no such GPU ({})", why(&e)));
    }
    let first = gpu(0).map_err(|e| format!("no GPU answered ({})", why(&e)))?;
    let mut all = vec![first];
    all.extend((1..most).map_while(|i| gpu(i).ok()));
    Ok(all)
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
            .to_string()
            .contains("expected `cpu`, `cuda`, `cuda:N` or `auto`"));
        assert!(device("cuda:x")
            .unwrap_err()
            .to_string()
            .contains("`cuda:0`"));
        assert!(device("cuda0")
            .unwrap_err()
            .to_string()
            .contains("`cuda:0`"));
        assert_eq!(parse_device("cuda"), Ok(DeviceChoice::AllGpus));
        assert_eq!(parse_device("cuda:3"), Ok(DeviceChoice::Gpu(3)));
        assert_eq!(parse_device("auto"), Ok(DeviceChoice::Auto));
        assert!(parse_device("cuda:-1").is_err() && parse_device("CPU").is_err());
        let (cpu, notice) = resolve_devices("cpu").unwrap();
        assert_eq!(cpu.len(), 1);
        assert_eq!(cpu[0].0, "cpu");
        assert!(notice.is_none());
        #[cfg(not(feature = "cuda"))]
        {
            let (d, notice) = resolve_device("auto").unwrap();
            assert!(d.is_cpu());
            assert!(notice.unwrap().contains("without CUDA"));
            for gpu in ["cuda", "cuda:0", "cuda:3"] {
                let e = device(gpu).unwrap_err();
                assert_eq!(e, DeviceError::NoCuda(gpu.into()));
                let e = e.to_string();
                assert!(
                    e.contains("built without CUDA") && e.contains("--features cuda"),
                    "{e}"
                );
            }
        }
    }
}
