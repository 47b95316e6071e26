//! Checks between the parameters of one call, and defaults derived from
//! other parameters. Each returns what is reported at the call.

use std::collections::BTreeMap;

use crate::check::value::Value;

/// Parameters of one call that do not fit together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("`ops` allows at most 8 operations, found {0}")]
    TooManyOps(i64),
    #[error("`mix` needs at least one source")]
    NoSources,
    #[error("`repeat` has {repeat} values for {sources} sources")]
    RepeatCount { repeat: usize, sources: usize },
    #[error("`{name}` ({value}) must be a multiple of `{of}` ({divisor})")]
    NotMultiple {
        name: &'static str,
        value: i64,
        of: &'static str,
        divisor: i64,
    },
    #[error("the head size `hidden / heads` ({0}) must be even for RoPE")]
    OddHead(i64),
    #[error(
        "this model has {params:.2e} parameters (about {:.0} GB to train in f32); \
         a `tiny` model has at most {MAX_TINY_PARAMS:.0e}",
        params * 16.0 / 1e9
    )]
    TooLarge { params: f64 },
    #[error("at most 100000 values")]
    TooManyValues,
}

fn get_i64(args: &BTreeMap<&'static str, Value>, name: &str) -> i64 {
    match args.get(name) {
        Some(Value::Int(v)) => *v,
        _ => 0,
    }
}

pub fn finish_task(args: &mut BTreeMap<&'static str, Value>) -> Result<(), CallError> {
    if let Some(Value::List(r)) = args.get("ops") {
        if let Some(Value::Int(hi)) = r.get(1) {
            if *hi > 8 {
                return Err(CallError::TooManyOps(*hi));
            }
        }
    }
    Ok(())
}

pub fn finish_mix(args: &mut BTreeMap<&'static str, Value>) -> Result<(), CallError> {
    let n = match args.get("sources") {
        Some(Value::List(s)) => s.len(),
        _ => 0,
    };
    if n == 0 {
        return Err(CallError::NoSources);
    }
    match args.get("repeat") {
        None => {
            args.insert("repeat", Value::List(vec![Value::Float(1.0); n]));
            Ok(())
        }
        Some(Value::List(r)) if r.len() != n => Err(CallError::RepeatCount {
            repeat: r.len(),
            sources: n,
        }),
        Some(_) => Ok(()),
    }
}

pub fn finish_tiny(args: &mut BTreeMap<&'static str, Value>) -> Result<(), CallError> {
    let hidden = get_i64(args, "hidden");
    let heads = get_i64(args, "heads");
    if hidden % heads != 0 {
        return Err(CallError::NotMultiple {
            name: "hidden",
            value: hidden,
            of: "heads",
            divisor: heads,
        });
    }
    if (hidden / heads) % 2 != 0 {
        return Err(CallError::OddHead(hidden / heads));
    }
    let kv_heads = args.entry("kv_heads").or_insert(Value::Int(heads)).clone();
    if let Value::Int(kv) = kv_heads {
        if heads % kv != 0 {
            return Err(CallError::NotMultiple {
                name: "heads",
                value: heads,
                of: "kv_heads",
                divisor: kv,
            });
        }
    }
    args.entry("intermediate")
        .or_insert_with(|| Value::Int(((8 * hidden + 2) / 3 + 31) / 32 * 32));
    // Training holds ~16 bytes a parameter (weights, gradients, two AdamW
    // moments, all f32); refuse what no machine of this kind could hold.
    let params = tiny_params(args) as f64;
    if params > MAX_TINY_PARAMS {
        return Err(CallError::TooLarge { params });
    }
    Ok(())
}

/// The most parameters a `tiny(...)` model may have (16 GB to train).
const MAX_TINY_PARAMS: f64 = 1e9;

/// Parameters of a `tiny` shape (untied embeddings over 259 byte tokens,
/// Q/K/V biases counted): an estimate for the size check, in i128 so no
/// shape the ranges allow overflows.
fn tiny_params(args: &BTreeMap<&'static str, Value>) -> i128 {
    let v = |name: &str| i128::from(get_i64(args, name));
    let (h, heads, kv, i, layers) = (
        v("hidden"),
        v("heads"),
        v("kv_heads"),
        v("intermediate"),
        v("layers"),
    );
    let head = h / heads.max(1);
    let attention = h * h * 2 + 2 * h * kv * head + h + 2 * kv * head;
    let block = attention + 3 * h * i + 2 * h;
    2 * 259 * h + layers * block + h
}

pub fn finish_shapes(args: &mut BTreeMap<&'static str, Value>) -> Result<(), CallError> {
    let size = get_i64(args, "image_size");
    if size % 4 != 0 {
        return Err(CallError::NotMultiple {
            name: "image_size",
            value: size,
            of: "the grid",
            divisor: 4,
        });
    }
    Ok(())
}

/// `tiny`'s checks on the decoder, then the vision tower's: heads divide
/// its width, patches tile the image and the pixel shuffle tiles the patch
/// grid.
pub fn finish_tiny_vlm(args: &mut BTreeMap<&'static str, Value>) -> Result<(), CallError> {
    finish_tiny(args)?;
    let width = get_i64(args, "vision_hidden");
    args.entry("vision_intermediate")
        .or_insert_with(|| Value::Int(4 * width));
    let multiple = |name, value: i64, of, divisor: i64| {
        if divisor != 0 && value % divisor == 0 {
            Ok(())
        } else {
            Err(CallError::NotMultiple {
                name,
                value,
                of,
                divisor,
            })
        }
    };
    multiple(
        "vision_hidden",
        width,
        "vision_heads",
        get_i64(args, "vision_heads"),
    )?;
    let (size, patch) = (get_i64(args, "image_size"), get_i64(args, "patch_size"));
    multiple("image_size", size, "patch_size", patch)?;
    multiple(
        "image_size / patch_size",
        size / patch.max(1),
        "downsample",
        get_i64(args, "downsample"),
    )
}

pub fn finish_space(args: &mut BTreeMap<&'static str, Value>) -> Result<(), CallError> {
    if get_i64(args, "n") > 100_000 {
        return Err(CallError::TooManyValues);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_derives_its_widths() {
        let mut args = BTreeMap::from([("hidden", Value::Int(128)), ("heads", Value::Int(4))]);
        finish_tiny(&mut args).unwrap();
        assert_eq!(args["kv_heads"], Value::Int(4));
        assert_eq!(args["intermediate"], Value::Int(352));
        let mut huge = BTreeMap::from([
            ("hidden", Value::Int(16384)),
            ("heads", Value::Int(128)),
            ("layers", Value::Int(64)),
        ]);
        let e = finish_tiny(&mut huge).unwrap_err().to_string();
        assert!(e.contains("parameters") && e.contains("GB"), "{e}");
        let mut bad = BTreeMap::from([("hidden", Value::Int(100)), ("heads", Value::Int(3))]);
        assert_eq!(
            finish_tiny(&mut bad),
            Err(CallError::NotMultiple {
                name: "hidden",
                value: 100,
                of: "heads",
                divisor: 3
            })
        );
    }
}
