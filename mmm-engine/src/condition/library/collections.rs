//! Arrays and maps: equality and search bounded in depth, callbacks on copies of the
//! elements, `map` checking its result as it grows.

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, ImmutableString, Map,
    NativeCallContext, Position, INT,
};

use super::Res;
use crate::condition::budget::{exceed, Stop, MAX_VALUE_DEPTH};

/// Whether `value` nests arrays and maps at most `left` levels deep.
fn shallow(value: &Dynamic, left: usize) -> bool {
    if value.is_array() {
        return left > 0
            && value
                .as_array_ref()
                .is_ok_and(|a| a.iter().all(|v| shallow(v, left - 1)));
    }
    if value.is_map() {
        return left > 0
            && value
                .as_map_ref()
                .is_ok_and(|m| m.values().all(|v| shallow(v, left - 1)));
    }
    true
}

/// Refuses values nested deeper than [`MAX_VALUE_DEPTH`] before a function recurses
/// into them.
fn check_depth<'a>(values: impl IntoIterator<Item = &'a Dynamic>) -> Res<()> {
    if values.into_iter().all(|v| shallow(v, MAX_VALUE_DEPTH)) {
        Ok(())
    } else {
        Err(exceed(Stop::Depth))
    }
}

/// `==` on two elements, as Rhai's array functions call it: a missing `==` between values
/// of different types is `false`.
fn element_equals(ctx: &NativeCallContext, a: &mut Dynamic, b: &mut Dynamic) -> Res<bool> {
    let same_type = a.type_id() == b.type_id();
    match ctx.call_native_fn_raw("==", true, &mut [a, b]) {
        Ok(v) => Ok(v.as_bool().unwrap_or(false)),
        Err(e) => match *e {
            EvalAltResult::ErrorFunctionNotFound(ref sig, ..)
                if sig.starts_with("==") && !same_type =>
            {
                Ok(false)
            }
            _ => Err(e),
        },
    }
}

fn arrays_equal(ctx: &NativeCallContext, a: &mut Array, mut b: Array) -> Res<bool> {
    if a.len() != b.len() {
        return Ok(false);
    }
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        if !element_equals(ctx, x, y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn maps_equal(ctx: &NativeCallContext, a: &mut Map, mut b: Map) -> Res<bool> {
    if a.len() != b.len() {
        return Ok(false);
    }
    for (key, x) in a.iter_mut() {
        let Some(y) = b.get_mut(key) else {
            return Ok(false);
        };
        let equal = ctx.call_native_fn_raw("==", true, &mut [x, y])?;
        if !equal.as_bool().unwrap_or(false) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn index_of_value(
    ctx: &NativeCallContext,
    array: &mut Array,
    value: &Dynamic,
    start: INT,
) -> Res<INT> {
    check_depth(array.iter().chain([value]))?;
    let len = array.len();
    let start = match start {
        s if s < 0 => len.saturating_sub(usize::try_from(s.unsigned_abs()).unwrap_or(usize::MAX)),
        s => usize::try_from(s).unwrap_or(usize::MAX),
    };
    for (i, item) in array.iter_mut().enumerate().skip(start) {
        if element_equals(ctx, item, &mut value.clone())? {
            return Ok(INT::try_from(i).unwrap_or(INT::MAX));
        }
    }
    Ok(-1)
}

/// Calls a callback on a copy of `item`, the way Rhai's array functions do: as `this`
/// with no argument, else with the item, else with the item and its index. The callback
/// gets a copy, so it cannot grow the array it walks.
fn call_on(
    ctx: &NativeCallContext,
    caller: &str,
    f: &FnPtr,
    item: &Dynamic,
    index: usize,
) -> Res<Dynamic> {
    let not_found = |e: &EvalAltResult| matches!(e, EvalAltResult::ErrorFunctionNotFound(sig, ..) if sig.starts_with(f.fn_name()));
    let mut this = item.clone();
    let index = Dynamic::from(INT::try_from(index).unwrap_or(INT::MAX));
    let result = match f.call_raw(ctx, Some(&mut this), [] as [Dynamic; 0]) {
        Err(e) if not_found(&e) => match f.call_raw(ctx, None, [item.clone()]) {
            Err(e) if not_found(&e) => f.call_raw(ctx, None, [item.clone(), index]),
            other => other,
        },
        other => other,
    };
    result.map_err(|e| {
        Box::new(EvalAltResult::ErrorInFunctionCall(
            caller.to_owned(),
            ctx.call_source().unwrap_or("").to_owned(),
            e,
            Position::NONE,
        ))
    })
}

fn truthy(ctx: &NativeCallContext, caller: &str, f: &FnPtr, item: &Dynamic, i: usize) -> Res<bool> {
    Ok(call_on(ctx, caller, f, item, i)?.as_bool().unwrap_or(false))
}

/// Running totals of an array being built, as Rhai's size check counts them.
#[derive(Default)]
struct Sizes {
    arrays: usize,
    maps: usize,
    strings: usize,
}

impl Sizes {
    fn add(&mut self, value: &Dynamic, left: usize) -> Result<(), Stop> {
        if left == 0 {
            return Err(Stop::Depth);
        }
        if let Ok(s) = value.as_immutable_string_ref() {
            self.strings = self.strings.saturating_add(s.len());
        } else if let Ok(array) = value.as_array_ref() {
            for v in array.iter() {
                self.arrays = self.arrays.saturating_add(1);
                self.add(v, left - 1)?;
            }
        } else if let Ok(map) = value.as_map_ref() {
            for v in map.values() {
                self.maps = self.maps.saturating_add(1);
                self.add(v, left - 1)?;
            }
        }
        Ok(())
    }

    fn check(&self, engine: &Engine) -> Result<(), Stop> {
        let over = |n: usize, max: usize| max > 0 && n > max;
        if over(self.strings, engine.max_string_size()) {
            Err(Stop::String)
        } else if over(self.arrays, engine.max_array_size()) {
            Err(Stop::Array)
        } else if over(self.maps, engine.max_map_size()) {
            Err(Stop::Map)
        } else {
            Ok(())
        }
    }
}

/// Array functions: equality and search bounded in depth, callbacks on copies, `map`
/// checking its result as it grows.
pub(super) fn arrays(engine: &mut Engine) {
    register!(engine, "==", pure: true,
    |ctx: NativeCallContext, a: &mut Array, b: Array| -> Res<bool> {
        check_depth(a.iter().chain(b.iter()))?;
        arrays_equal(&ctx, a, b)
    });
    register!(engine, "!=", pure: true,
    |ctx: NativeCallContext, a: &mut Array, b: Array| -> Res<bool> {
        check_depth(a.iter().chain(b.iter()))?;
        arrays_equal(&ctx, a, b).map(|equal| !equal)
    });
    register!(engine, "contains", pure: true,
    |ctx: NativeCallContext, a: &mut Array, value: Dynamic| -> Res<bool> {
        index_of_value(&ctx, a, &value, 0).map(|i| i >= 0)
    });
    register!(engine, "index_of", pure: true,
    |ctx: NativeCallContext, a: &mut Array, value: Dynamic| -> Res<INT> {
        index_of_value(&ctx, a, &value, 0)
    });
    register!(engine, "index_of", pure: true,
    |ctx: NativeCallContext, a: &mut Array, value: Dynamic, start: INT| -> Res<INT> {
        index_of_value(&ctx, a, &value, start)
    });
    // Rhai reads a string here as the name of a function to call (deprecated); conditions
    // search for the string, as `contains` does.
    register!(engine, "index_of", pure: true,
    |ctx: NativeCallContext, a: &mut Array, value: ImmutableString| -> Res<INT> {
        index_of_value(&ctx, a, &value.into(), 0)
    });
    register!(engine, "index_of", pure: true,
    |ctx: NativeCallContext, a: &mut Array, value: ImmutableString, start: INT| -> Res<INT> {
        index_of_value(&ctx, a, &value.into(), start)
    });
    register!(engine, "index_of", pure: true,
    |ctx: NativeCallContext, a: &mut Array, f: FnPtr| -> Res<INT> {
        for (i, item) in a.iter().enumerate() {
            if truthy(&ctx, "index_of", &f, item, i)? {
                return Ok(INT::try_from(i).unwrap_or(INT::MAX));
            }
        }
        Ok(-1)
    });
    register!(engine, "some", pure: true,
    |ctx: NativeCallContext, a: &mut Array, f: FnPtr| -> Res<bool> {
        for (i, item) in a.iter().enumerate() {
            if truthy(&ctx, "some", &f, item, i)? {
                return Ok(true);
            }
        }
        Ok(false)
    });
    register!(engine, "all", pure: true,
    |ctx: NativeCallContext, a: &mut Array, f: FnPtr| -> Res<bool> {
        for (i, item) in a.iter().enumerate() {
            if !truthy(&ctx, "all", &f, item, i)? {
                return Ok(false);
            }
        }
        Ok(true)
    });
    register!(engine, "find", pure: true,
    |ctx: NativeCallContext, a: &mut Array, f: FnPtr| -> Res<Dynamic> {
        for (i, item) in a.iter().enumerate() {
            if truthy(&ctx, "find", &f, item, i)? {
                return Ok(item.clone());
            }
        }
        Ok(Dynamic::UNIT)
    });
    register!(engine, "filter", pure: true,
    |ctx: NativeCallContext, a: &mut Array, f: FnPtr| -> Res<Array> {
        let mut kept = Array::new();
        for (i, item) in a.iter().enumerate() {
            if truthy(&ctx, "filter", &f, item, i)? {
                kept.push(item.clone());
            }
        }
        Ok(kept)
    });
    register!(engine, "map", pure: true,
    |ctx: NativeCallContext, a: &mut Array, f: FnPtr| -> Res<Array> {
        let mut mapped = Array::with_capacity(a.len());
        let mut sizes = Sizes::default();
        for (i, item) in a.iter().enumerate() {
            let value = call_on(&ctx, "map", &f, item, i)?;
            sizes.arrays = sizes.arrays.saturating_add(1);
            sizes
                .add(&value, MAX_VALUE_DEPTH)
                .and_then(|()| sizes.check(ctx.engine()))
                .map_err(exceed)?;
            mapped.push(value);
        }
        Ok(mapped)
    });
}

/// Map equality, bounded in depth.
pub(super) fn maps(engine: &mut Engine) {
    register!(engine, "==", pure: true,
    |ctx: NativeCallContext, a: &mut Map, b: Map| -> Res<bool> {
        check_depth(a.values().chain(b.values()))?;
        maps_equal(&ctx, a, b)
    });
    register!(engine, "!=", pure: true,
    |ctx: NativeCallContext, a: &mut Map, b: Map| -> Res<bool> {
        check_depth(a.values().chain(b.values()))?;
        maps_equal(&ctx, a, b).map(|equal| !equal)
    });
}
