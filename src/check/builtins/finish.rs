//! Checks between the parameters of one call, and defaults derived from
//! other parameters. Each returns the message reported at the call.

use std::collections::BTreeMap;

use crate::check::value::Value;

fn get_i64(args: &BTreeMap<&'static str, Value>, name: &str) -> i64 {
    match args.get(name) {
        Some(Value::Int(v)) => *v,
        _ => 0,
    }
}

pub fn finish_task(args: &mut BTreeMap<&'static str, Value>) -> Result<(), String> {
    if let Some(Value::List(r)) = args.get("ops") {
        if let Some(Value::Int(hi)) = r.get(1) {
            if *hi > 8 {
                return Err(format!("`ops` allows at most 8 operations, found {hi}"));
            }
        }
    }
    Ok(())
}

pub fn finish_mix(args: &mut BTreeMap<&'static str, Value>) -> Result<(), String> {
    let n = match args.get("sources") {
        Some(Value::List(s)) => s.len(),
        _ => 0,
    };
    if n == 0 {
        return Err("`mix` needs at least one source".into());
    }
    match args.get("repeat") {
        None => {
            args.insert("repeat", Value::List(vec![Value::Float(1.0); n]));
            Ok(())
        }
        Some(Value::List(r)) if r.len() != n => {
            Err(format!("`repeat` has {} values for {n} sources", r.len()))
        }
        Some(_) => Ok(()),
    }
}

pub fn finish_tiny(args: &mut BTreeMap<&'static str, Value>) -> Result<(), String> {
    let hidden = get_i64(args, "hidden");
    let heads = get_i64(args, "heads");
    if hidden % heads != 0 {
        return Err(format!(
            "`hidden` ({hidden}) must be a multiple of `heads` ({heads})"
        ));
    }
    if (hidden / heads) % 2 != 0 {
        return Err(format!(
            "the head size `hidden / heads` ({}) must be even for RoPE",
            hidden / heads
        ));
    }
    let kv_heads = args.entry("kv_heads").or_insert(Value::Int(heads)).clone();
    if let Value::Int(kv) = kv_heads {
        if heads % kv != 0 {
            return Err(format!(
                "`heads` ({heads}) must be a multiple of `kv_heads` ({kv})"
            ));
        }
    }
    args.entry("intermediate")
        .or_insert_with(|| Value::Int(((8 * hidden + 2) / 3 + 31) / 32 * 32));
    Ok(())
}

pub fn finish_space(args: &mut BTreeMap<&'static str, Value>) -> Result<(), String> {
    if get_i64(args, "n") > 100_000 {
        return Err("at most 100000 values".into());
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
        let mut bad = BTreeMap::from([("hidden", Value::Int(100)), ("heads", Value::Int(3))]);
        assert!(finish_tiny(&mut bad)
            .unwrap_err()
            .contains("multiple of `heads`"));
    }
}
