//! The functions conditions can call, besides the helpers.
//!
//! The engine starts empty (`Engine::new_raw`) and gets Rhai's packages one by one:
//! arithmetic, logic, math, bit fields, function-pointer basics, iterators (ranges,
//! `chars`, `bits`), strings, arrays and maps. Not taken: the language-core package
//! (`sleep`, `exit`, `parse_json`, tags, function metadata), blobs and time (time is not
//! compiled in). Every function that survives was read for two properties:
//!
//! - it cannot build a value beyond the size limits before Rhai checks the size (Rhai
//!   checks a function's result after it returns, when a `replace` of a 128 KiB string by
//!   itself has already allocated gigabytes);
//! - it cannot run unbounded work inside one call (Rhai's budget is only consulted between
//!   operations, and its operation count restarts inside callbacks).
//!
//! Those that fail either are replaced here, registered under the same name and parameter
//! types (the engine's own functions shadow the packages'), by versions that compute the
//! size of the result first, or by an error saying the function is not available. The
//! documentation's list is in `docs/playbook-reference.md` ("What conditions can call").

use std::any::TypeId;
use std::fmt::Write as _;

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, ImmutableString, Map, Module,
    NativeCallContext, Position, INT,
};

use super::sandbox::{exceed, halt, stopped, Stop, MAX_VALUE_DEPTH};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Puts the condition library into `engine`.
pub(crate) fn install(engine: &mut Engine) {
    use rhai::packages::{
        ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage,
        BasicMapPackage, BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage,
        MoreStringPackage, Package,
    };
    // One module in the order of Rhai's standard package, with every function registered
    // up front: packages otherwise keep their functions in manifests searched one entry at a
    // time on each lookup, and evaluations start with empty resolution caches.
    let mut lib = Module::new();
    for package in [
        ArithmeticPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
        BitFieldPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
    ] {
        lib.combine_flatten((*package).clone());
    }
    lib.register_lazy_functions();
    lib.build_index();
    engine.register_global_module(lib.into());
    // The engine's own namespace is searched before any module: what is registered below
    // shadows the packages' functions of the same name and parameter types.
    remove_unavailable(engine);
    strings(engine);
    text(engine);
    arrays(engine);
    maps(engine);
}

fn t<T: 'static>() -> TypeId {
    TypeId::of::<T>()
}

/// Functions of the packages above that conditions cannot call, by parameter types.
/// Callbacks that may change the array they walk (`for_each`, `drain`, `retain`, `reduce`
/// — their callback sees each element as a mutable `this`), that collect callback results
/// (`zip`, maps' `map`), that swallow the callback's errors and go on (`sort`, `dedup`
/// with a comparer), the deprecated call-by-name forms, `to_blob` (blobs are not in scope)
/// and `to_json`.
fn remove_unavailable(engine: &mut Engine) {
    let (array, map, string, fnptr, int, dynamic) = (
        t::<Array>(),
        t::<Map>(),
        t::<ImmutableString>(),
        t::<FnPtr>(),
        t::<INT>(),
        t::<Dynamic>(),
    );
    let removed: &[(&'static str, &[TypeId])] = &[
        ("to_blob", &[string]),
        ("to_json", &[map]),
        ("for_each", &[array, fnptr]),
        ("find", &[array, fnptr, int]),
        ("find_map", &[array, fnptr]),
        ("find_map", &[array, fnptr, int]),
        ("index_of", &[array, fnptr, int]),
        ("reduce", &[array, fnptr]),
        ("reduce", &[array, fnptr, dynamic]),
        ("reduce", &[array, string]),
        ("reduce", &[array, string, dynamic]),
        ("reduce_rev", &[array, fnptr]),
        ("reduce_rev", &[array, fnptr, dynamic]),
        ("reduce_rev", &[array, string]),
        ("reduce_rev", &[array, string, dynamic]),
        ("drain", &[array, fnptr]),
        ("drain", &[array, string]),
        ("retain", &[array, fnptr]),
        ("retain", &[array, string]),
        ("dedup", &[array]),
        ("dedup", &[array, fnptr]),
        ("dedup", &[array, string]),
        ("sort", &[array, fnptr]),
        ("sort", &[array, string]),
        ("sort_by", &[array, fnptr]),
        ("order", &[array, fnptr]),
        ("order_by", &[array, fnptr]),
        ("zip", &[array, array, fnptr]),
        ("all", &[array, string]),
        ("some", &[array, string]),
        ("filter", &[array, string]),
        ("map", &[array, string]),
        ("drain", &[map, fnptr]),
        ("retain", &[map, fnptr]),
        ("filter", &[map, fnptr]),
        ("map", &[map, fnptr]),
    ];
    for &(name, params) in removed {
        engine.register_raw_fn(name, params, move |_, _| -> Res<Dynamic> {
            Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("`{name}` is not available in conditions").into(),
                Position::NONE,
            )))
        });
    }
}

/// Registers `f` under `name`, as pure or not as Rhai's own function of that name is (a
/// pure method may be called on the read-only `signal` and `ctx`).
macro_rules! register {
    ($engine:expr, $name:expr, pure: $pure:expr, $f:expr) => {
        FuncRegistration::new($name)
            .with_purity($pure)
            .register_into_engine($engine, $f);
    };
}

fn string_limit(ctx: &NativeCallContext) -> usize {
    ctx.engine().max_string_size()
}

/// Refuses a string of `len` bytes before it is built.
fn check_string(ctx: &NativeCallContext, len: Option<usize>) -> Res<()> {
    let max = string_limit(ctx);
    match len {
        Some(len) if max == 0 || len <= max => Ok(()),
        _ => Err(exceed(Stop::String)),
    }
}

/// Refuses an array of `len` elements before it is built.
fn check_array(ctx: &NativeCallContext, len: usize) -> Res<()> {
    let max = ctx.engine().max_array_size();
    if max > 0 && len > max {
        return Err(exceed(Stop::Array));
    }
    Ok(())
}

/// Length of `string` with every match of `find` replaced by `with_len` bytes.
fn replaced_len(string: &str, find: &str, with_len: usize) -> Option<usize> {
    let n = string.matches(find).count();
    string
        .len()
        .checked_sub(n.checked_mul(find.len())?)?
        .checked_add(n.checked_mul(with_len)?)
}

fn replace_checked(
    ctx: &NativeCallContext,
    string: &mut ImmutableString,
    find: &str,
    with: &str,
) -> Res<()> {
    // Rhai leaves an empty string alone (`"".replace("", "x")` stays empty).
    if string.is_empty() {
        return Ok(());
    }
    check_string(ctx, replaced_len(string, find, with.len()))?;
    *string = string.replace(find, with).into();
    Ok(())
}

/// Pads `string` to `len` characters with repetitions of `padding`, as Rhai does, but
/// refusing the result before building it, and leaving the string alone when the padding
/// is empty (Rhai looped forever).
fn pad_checked(
    ctx: &NativeCallContext,
    string: &mut ImmutableString,
    len: INT,
    padding: &str,
) -> Res<()> {
    if len <= 0 {
        return Ok(());
    }
    let len = usize::try_from(len).map_err(|_| exceed(Stop::String))?;
    let max = string_limit(ctx);
    if max > 0 && len > max {
        return Err(exceed(Stop::String));
    }
    let have = string.chars().count();
    let unit = padding.chars().count();
    if len <= have || unit == 0 {
        return Ok(());
    }
    let missing = len - have;
    let (whole, rest) = (missing / unit, missing % unit);
    let tail: String = padding.chars().take(rest).collect();
    let bytes = whole
        .checked_mul(padding.len())
        .and_then(|b| b.checked_add(tail.len()))
        .and_then(|b| b.checked_add(string.len()));
    check_string(ctx, bytes)?;
    let s = string.make_mut();
    s.push_str(&padding.repeat(whole));
    s.push_str(&tail);
    Ok(())
}

fn upper_len(string: &str) -> usize {
    string
        .chars()
        .map(|c| c.to_uppercase().map(char::len_utf8).sum::<usize>())
        .sum()
}

// Lower-casing maps a final sigma by context (σ or ς), both two bytes, so the per-character
// lengths add up to the length of `str::to_lowercase`.
fn lower_len(string: &str) -> usize {
    string
        .chars()
        .map(|c| c.to_lowercase().map(char::len_utf8).sum::<usize>())
        .sum()
}

fn to_upper(ctx: &NativeCallContext, string: ImmutableString) -> Res<ImmutableString> {
    if string.chars().all(char::is_uppercase) {
        return Ok(string);
    }
    check_string(ctx, Some(upper_len(&string)))?;
    Ok(string.to_uppercase().into())
}

fn to_lower(ctx: &NativeCallContext, string: ImmutableString) -> Res<ImmutableString> {
    if string.is_empty() || string.chars().all(char::is_lowercase) {
        return Ok(string);
    }
    check_string(ctx, Some(lower_len(&string)))?;
    Ok(string.to_lowercase().into())
}

/// Collects pieces into an array, refusing it once it passes the array limit.
fn pieces<'a>(ctx: &NativeCallContext, iter: impl Iterator<Item = &'a str>) -> Res<Array> {
    let mut array = Array::new();
    for piece in iter {
        check_array(ctx, array.len() + 1)?;
        array.push(piece.into());
    }
    Ok(array)
}

fn whole(string: &ImmutableString) -> Res<Array> {
    Ok(vec![string.clone().into()])
}

fn segments(n: INT) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// String functions whose result can be larger than their input.
fn strings(engine: &mut Engine) {
    register!(engine, "replace", pure: false,
    |ctx: NativeCallContext, s: &mut ImmutableString, find: &str, with: &str| {
        replace_checked(&ctx, s, find, with)
    });
    register!(engine, "replace", pure: false,
    |ctx: NativeCallContext, s: &mut ImmutableString, find: &str, with: char| {
        replace_checked(&ctx, s, find, &with.to_string())
    });
    register!(engine, "replace", pure: false,
    |ctx: NativeCallContext, s: &mut ImmutableString, find: char, with: &str| {
        replace_checked(&ctx, s, &find.to_string(), with)
    });
    register!(engine, "replace", pure: false,
    |ctx: NativeCallContext, s: &mut ImmutableString, find: char, with: char| {
        replace_checked(&ctx, s, &find.to_string(), &with.to_string())
    });
    register!(engine, "pad", pure: false,
    |ctx: NativeCallContext, s: &mut ImmutableString, len: INT, c: char| {
        pad_checked(&ctx, s, len, &c.to_string())
    });
    register!(engine, "pad", pure: false,
    |ctx: NativeCallContext, s: &mut ImmutableString, len: INT, padding: &str| {
        pad_checked(&ctx, s, len, padding)
    });
    register!(engine, "to_upper", pure: true,
        |ctx: NativeCallContext, s: ImmutableString| to_upper(&ctx, s));
    register!(engine, "to_lower", pure: true,
        |ctx: NativeCallContext, s: ImmutableString| to_lower(&ctx, s));
    register!(engine, "make_upper", pure: false,
    |ctx: NativeCallContext, s: &mut ImmutableString| -> Res<()> {
        if !s.is_empty() {
            *s = to_upper(&ctx, s.clone())?;
        }
        Ok(())
    });
    register!(engine, "make_lower", pure: false,
    |ctx: NativeCallContext, s: &mut ImmutableString| -> Res<()> {
        *s = to_lower(&ctx, s.clone())?;
        Ok(())
    });
    register!(engine, "to_chars", pure: true,
    |ctx: NativeCallContext, s: &str| -> Res<Array> {
        check_array(&ctx, s.chars().count())?;
        Ok(s.chars().map(Dynamic::from).collect())
    });
    // The splits keep Rhai's special cases (an empty string, or a delimiter that does not
    // occur, gives the whole string) and stop at the array limit.
    register!(engine, "split", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString| -> Res<Array> {
        if s.is_empty() {
            return whole(s);
        }
        pieces(&ctx, s.split_whitespace())
    });
    register!(engine, "split", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, d: &str| -> Res<Array> {
        if s.is_empty() || (!d.is_empty() && !s.contains(d)) {
            return whole(s);
        }
        pieces(&ctx, s.split(d))
    });
    register!(engine, "split", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, d: &str, n: INT| -> Res<Array> {
        if n <= 1 || s.is_empty() || (!d.is_empty() && !s.contains(d)) {
            return whole(s);
        }
        pieces(&ctx, s.splitn(segments(n), d))
    });
    register!(engine, "split", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, d: char| -> Res<Array> {
        if s.is_empty() || !s.contains(d) {
            return whole(s);
        }
        pieces(&ctx, s.split(d))
    });
    register!(engine, "split", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, d: char, n: INT| -> Res<Array> {
        if n <= 1 || s.is_empty() || !s.contains(d) {
            return whole(s);
        }
        pieces(&ctx, s.splitn(segments(n), d))
    });
    register!(engine, "split_rev", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, d: &str| -> Res<Array> {
        if s.is_empty() || (!d.is_empty() && !s.contains(d)) {
            return whole(s);
        }
        pieces(&ctx, s.rsplit(d))
    });
    register!(engine, "split_rev", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, d: &str, n: INT| -> Res<Array> {
        if n <= 1 || s.is_empty() || (!d.is_empty() && !s.contains(d)) {
            return whole(s);
        }
        pieces(&ctx, s.rsplitn(segments(n), d))
    });
    register!(engine, "split_rev", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, d: char| -> Res<Array> {
        if s.is_empty() || !s.contains(d) {
            return whole(s);
        }
        pieces(&ctx, s.rsplit(d))
    });
    register!(engine, "split_rev", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, d: char, n: INT| -> Res<Array> {
        if n <= 1 || s.is_empty() || !s.contains(d) {
            return whole(s);
        }
        pieces(&ctx, s.rsplitn(segments(n), d))
    });
    // Concatenation with any value: the value's text is built within what is left of the
    // limit, then joined.
    register!(engine, "+", pure: true,
    |ctx: NativeCallContext, s: &mut ImmutableString, mut item: Dynamic| -> Res<ImmutableString> {
        let room = room_after(&ctx, s.len());
        let text = display(&ctx, &mut item, room)?;
        joined(&ctx, s, &text)
    });
    register!(engine, "+", pure: true,
    |ctx: NativeCallContext, item: &mut Dynamic, s: &str| -> Res<ImmutableString> {
        let room = room_after(&ctx, s.len());
        let text = display(&ctx, item, room)?;
        joined(&ctx, &text, s)
    });
    for name in ["+=", "append"] {
        register!(engine, name, pure: false,
        |ctx: NativeCallContext, s: &mut ImmutableString, mut item: Dynamic| -> Res<()> {
            let room = room_after(&ctx, s.len());
            let text = display(&ctx, &mut item, room)?;
            if !text.is_empty() {
                *s = joined(&ctx, s, &text)?;
            }
            Ok(())
        });
    }
}

/// Bytes left under the string limit after `used` (`usize::MAX` when unlimited).
fn room_after(ctx: &NativeCallContext, used: usize) -> usize {
    match string_limit(ctx) {
        0 => usize::MAX,
        max => max.saturating_sub(used),
    }
}

fn joined(ctx: &NativeCallContext, a: &str, b: &str) -> Res<ImmutableString> {
    if b.is_empty() {
        return Ok(a.into());
    }
    check_string(ctx, a.len().checked_add(b.len()))?;
    let mut out = String::with_capacity(a.len() + b.len());
    out.push_str(a);
    out.push_str(b);
    Ok(out.into())
}

/// A `fmt::Write` that refuses to grow past `room` bytes.
struct Bounded {
    out: String,
    room: usize,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.out.len().saturating_add(s.len()) > self.room {
            return Err(std::fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// Why formatting stopped.
enum Unfit {
    TooLong,
    TooDeep,
}

impl From<std::fmt::Error> for Unfit {
    fn from(_: std::fmt::Error) -> Unfit {
        Unfit::TooLong
    }
}

/// Writes `value` as Rhai's `to_debug` does for an element of an array or map: strings
/// quoted and escaped, arrays `[a, b]`, maps `#{"k": v}`, everything else by its own
/// `to_debug`.
fn write_debug(
    ctx: &NativeCallContext,
    value: &mut Dynamic,
    w: &mut Bounded,
    depth: usize,
) -> Result<(), Unfit> {
    if let Ok(s) = value.as_immutable_string_ref() {
        write!(w, "{:?}", s.as_str())?;
        return Ok(());
    }
    if let Ok(mut array) = value.as_array_mut() {
        return write_array(ctx, &mut array, w, depth);
    }
    if let Ok(mut map) = value.as_map_mut() {
        return write_map(ctx, &mut map, w, depth);
    }
    // Numbers, characters, booleans, `()`, ranges, function pointers: short texts.
    let text = scalar_text(ctx, "to_debug", value);
    w.write_str(&text)?;
    Ok(())
}

/// Rhai's text of an array: `[` and the elements' `to_debug`, separated by `, `, and `]`.
fn write_array(
    ctx: &NativeCallContext,
    array: &mut Array,
    w: &mut Bounded,
    depth: usize,
) -> Result<(), Unfit> {
    if depth >= MAX_VALUE_DEPTH {
        return Err(Unfit::TooDeep);
    }
    w.write_str("[")?;
    let len = array.len();
    for (i, item) in array.iter_mut().enumerate() {
        write_debug(ctx, item, w, depth + 1)?;
        if i + 1 < len {
            w.write_str(", ")?;
        }
    }
    w.write_str("]")?;
    Ok(())
}

/// Rhai's text of a map: `#{`, `"key": value` pairs separated by `, `, and `}`.
fn write_map(
    ctx: &NativeCallContext,
    map: &mut Map,
    w: &mut Bounded,
    depth: usize,
) -> Result<(), Unfit> {
    if depth >= MAX_VALUE_DEPTH {
        return Err(Unfit::TooDeep);
    }
    w.write_str("#{")?;
    let len = map.len();
    for (i, (key, item)) in map.iter_mut().enumerate() {
        write!(w, "{:?}: ", key.as_str())?;
        write_debug(ctx, item, w, depth + 1)?;
        if i + 1 < len {
            w.write_str(", ")?;
        }
    }
    w.write_str("}")?;
    Ok(())
}

/// A scalar's text from Rhai's own function, as Rhai's `print_with_func` reads it.
fn scalar_text(ctx: &NativeCallContext, function: &str, value: &mut Dynamic) -> ImmutableString {
    match ctx.call_native_fn_raw(function, true, &mut [value]) {
        Ok(text) if text.is_string() => text.into_immutable_string().unwrap_or_default(),
        Ok(other) => ctx.engine().map_type_name(other.type_name()).into(),
        Err(_) => ctx.engine().map_type_name(value.type_name()).into(),
    }
}

/// The text of an array or map, at most `room` bytes; a value too long or too deep stops
/// the evaluation. The function returns an empty text rather than an error then, because
/// Rhai's string interpolation answers an error from `to_string` by formatting the value
/// itself, without any bound; the stop ends the evaluation at its next operation.
fn bounded_text(
    room: usize,
    write: impl FnOnce(&mut Bounded) -> Result<(), Unfit>,
) -> ImmutableString {
    let mut w = Bounded {
        out: String::new(),
        room,
    };
    match write(&mut w) {
        Ok(()) => w.out.into(),
        Err(Unfit::TooLong) => {
            halt(Stop::String);
            ImmutableString::new()
        }
        Err(Unfit::TooDeep) => {
            halt(Stop::Depth);
            ImmutableString::new()
        }
    }
}

/// `to_string` of any value within `room` bytes.
fn display(ctx: &NativeCallContext, value: &mut Dynamic, room: usize) -> Res<ImmutableString> {
    let text = if value.is_array() || value.is_map() {
        bounded_text(room, |w| write_debug(ctx, value, w, 0))
    } else if value.is_string() {
        value.clone().into_immutable_string().unwrap_or_default()
    } else {
        scalar_text(ctx, "to_string", value)
    };
    if let Some(stop) = stopped() {
        return Err(exceed(stop));
    }
    if text.len() > room {
        return Err(exceed(Stop::String));
    }
    Ok(text)
}

/// `to_string`, `to_debug`, `print` and `debug` of arrays and maps (and `to_debug` of a
/// string, which escaping can make six times longer), bounded by the string limit.
fn text(engine: &mut Engine) {
    for name in ["to_string", "to_debug", "print", "debug"] {
        register!(engine, name, pure: true,
        |ctx: NativeCallContext, array: &mut Array| -> ImmutableString {
            bounded_text(room_after(&ctx, 0), |w| write_array(&ctx, array, w, 0))
        });
        register!(engine, name, pure: true,
        |ctx: NativeCallContext, map: &mut Map| -> ImmutableString {
            bounded_text(room_after(&ctx, 0), |w| write_map(&ctx, map, w, 0))
        });
    }
    for name in ["to_debug", "debug"] {
        register!(engine, name, pure: true,
        |ctx: NativeCallContext, s: &str| -> ImmutableString {
            bounded_text(room_after(&ctx, 0), |w| Ok(write!(w, "{s:?}")?))
        });
    }
}

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
fn arrays(engine: &mut Engine) {
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
fn maps(engine: &mut Engine) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::condition::{ConditionLimits, HelperInputs, RhaiState, Sandbox};
    use crate::env::Env;
    use crate::signal::Signal;

    fn run(sandbox: &Sandbox, src: &str) -> Result<bool, String> {
        let condition = sandbox
            .compile(src)
            .map_err(|e| format!("does not compile: {}", e.message))?;
        let signal = Signal::from_json(
            &json!({"tenant_id": "t", "actor_id": "a", "kind": "pr.opened",
                    "occurred_at": "2026-11-22T10:00:00Z",
                    "payload": {"labels": ["a", "b"], "n": 3}}),
            1 << 16,
        )
        .map_err(|e| e.to_string())?;
        let ctx = serde_json::Map::new();
        let env = Env {
            signal: &signal,
            ctx: &ctx,
            now_text: "2026-11-22T10:00:00Z",
        };
        let helpers = HelperInputs {
            now: jiff::Timestamp::UNIX_EPOCH,
            recent: &[],
            zone: &jiff::tz::TimeZone::UTC,
        };
        condition.evaluate_rhai(sandbox, &env, &helpers, &mut RhaiState::new())
    }

    /// Every function `docs/playbook-reference.md` lists as in scope works, with Rhai's
    /// meaning; every function it lists as removed is refused.
    #[test]
    fn the_documented_library() {
        let sandbox = Sandbox::new(ConditionLimits::default());
        for src in [
            // numbers
            "abs(-2) == 2 && sign(-3) == -1 && min(1, 2) == 1 && max(1.5, 2) == 2.0",
            "floor(1.5) == 1.0 && ceiling(1.5) == 2.0 && round(1.5) == 2.0 && int(1.5) == 1.0",
            "fraction(1.5) == 0.5 && sqrt(4.0) == 2.0 && exp(0.0) == 1.0 && ln(1.0) == 0.0",
            "log(100.0) == 2.0 && sin(0.0) == 0.0 && !is_nan(1.0) && is_finite(1.0)",
            "to_int(1.9) == 1 && to_float(2) == 2.0 && parse_int(\"12\") == 12",
            "parse_float(\"1.5\") == 1.5 && 255.to_hex() == \"ff\" && 8.to_octal() == \"10\"",
            "5.to_binary() == \"101\" && 5.get_bit(0) && 2 ** 3 == 8 && 7 % 4 == 3",
            // strings
            "let s = \"Hello\"; s.len() == 5 && s.bytes() == 5 && !s.is_empty()",
            "let s = \"Hello\"; s.contains(\"ell\") && s.starts_with(\"He\") && s.ends_with('o')",
            "let s = \"Hello\"; s.index_of('l') == 2 && s.get(1) == 'e' && s.sub_string(1, 3) == \"ell\"",
            "\"a,b\".split(\",\") == [\"a\", \"b\"] && \"a,b\".split_rev(',') == [\"b\", \"a\"]",
            "\"a b\".split() == [\"a\", \"b\"] && \"ab\".to_chars() == ['a', 'b']",
            "let n = 0; for c in \"abc\".chars() { n += 1; } n == 3",
            "\"aB\".to_upper() == \"AB\" && \"aB\".to_lower() == \"ab\"",
            "let s = \"aXa\"; s.replace(\"a\", \"bb\"); s == \"bbXbb\"",
            "let s = \"a\"; s.pad(3, '-'); s == \"a--\"",
            "let s = \" a \"; s.trim(); s == \"a\"",
            "let s = \"abcd\"; s.crop(1, 2); s == \"bc\"",
            "let s = \"abcd\"; s.truncate(2); s.remove('b'); s == \"a\"",
            "let s = \"abc\"; s.pop() == 'c' && s == \"ab\"",
            "let s = \"abc\"; s.set(0, 'x'); s.make_upper(); s == \"XBC\"",
            "let s = \"ABC\"; s.make_lower(); s.clear(); s == \"\"",
            "min(\"a\", \"b\") == \"a\" && max(\"a\", \"b\") == \"b\"",
            "let s = \"n\" + 1; s += [2]; s.append(#{x: 3}); s == \"n1[2]#{\\\"x\\\": 3}\"",
            "`n${1 + 1}` == \"n2\" && [1, \"a\"].to_string() == \"[1, \\\"a\\\"]\"",
            "\"a\\tb\".to_debug() == \"\\\"a\\\\tb\\\"\"",
            // arrays
            "let a = [1, 2, 3]; a.len() == 3 && !a.is_empty() && a.contains(2) && 3 in a",
            "let a = [1, 2, 3]; a.index_of(2) == 1 && a.index_of(|x| x > 1) == 1 && a.get(0) == 1",
            "let a = [\"x\", \"y\"]; a.index_of(\"y\") == 1 && a.index_of(\"y\", 1) == 1",
            "let a = [1]; a.set(0, 5); a.push(6); a.insert(0, 4); a.append([7]); a == [4, 5, 6, 7]",
            "let a = [1, 2, 3]; a.pop() == 3 && a.shift() == 1 && a.remove(0) == 2 && a == []",
            "let a = [1, 2, 3, 4]; a.extract(1, 2) == [2, 3] && a.split(2) == [3, 4] && a == [1, 2]",
            "let a = [1, 2, 3, 4]; a.chop(3); a.truncate(2); a == [2, 3]",
            "let a = [1, 2, 3, 4]; a.drain(0..1) == [1] && a.retain(0..2) == [4] && a == [2, 3]",
            "let a = [1, 2, 3]; a.splice(1, 1, [9, 9]); a.pad(5, 0); a.reverse(); a == [0, 3, 9, 9, 1]",
            "let a = [3, 1, 2]; a.order() == [1, 2, 3] && { a.sort(); a == [1, 2, 3] }",
            "let a = [1, 2, 3]; a.some(|x| x > 2) && a.all(|x| x > 0) && a.filter(|x| x > 1) == [2, 3]",
            "let a = [1, 2, 3]; a.find(|x| x > 1) == 2 && a.map(|x| x * 2) == [2, 4, 6] && [1] + [2] == [1, 2]",
            "[1, [2]] != [1, [3]] && signal.payload.labels == [\"a\", \"b\"]",
            "signal.payload.labels.contains(\"a\") && signal.payload.labels.some(|l| l == \"b\")",
            // maps
            "let m = #{a: 1}; m.len() == 1 && !m.is_empty() && m.contains(\"a\") && \"a\" in m",
            "let m = #{a: 1}; m.set(\"b\", 2); m.get(\"b\") == 2 && m.remove(\"a\") == 1 && m.keys() == [\"b\"]",
            "let m = #{a: 1}; m.mixin(#{b: 2}); m.fill_with(#{a: 9}); m += #{c: 3}; m.values() == [1, 2, 3]",
            "#{a: [1]} == #{a: [1]} && #{a: 1} != #{a: 2} && (#{a: 1} + #{b: 2}).len() == 2",
            // ranges
            "let r = 1..4; r.start == 1 && r.end == 4 && r.contains(2) && !r.is_empty()",
            "(1..=3).is_inclusive() && (1..3).is_exclusive() && { let n = 0; for i in range(0, 10, 2) { n += i; } n == 20 }",
            // keywords
            "type_of(1) == \"i64\" && is_def_var(\"signal\") && Fn(\"abs\").call(-1) == 1",
        ] {
            assert_eq!(run(&sandbox, src), Ok(true), "{src}");
        }
        for (src, error) in [
            ("sleep(1); true", "Function not found: sleep"),
            ("exit(true)", "Function not found: exit"),
            ("parse_json(\"1\") == 1", "Function not found: parse_json"),
            ("#{a: 1}.to_json() != \"\"", "`to_json` is not available"),
            ("\"a\".to_blob() != ()", "`to_blob` is not available"),
            ("[1].for_each(|| 1); true", "`for_each` is not available"),
            ("[1].reduce(|a, b| a) == 1", "`reduce` is not available"),
            (
                "[1].reduce_rev(|a, b| a) == 1",
                "`reduce_rev` is not available",
            ),
            ("[1].find_map(|x| x) == 1", "`find_map` is not available"),
            ("[1].drain(|x| true) == [1]", "`drain` is not available"),
            ("[1].retain(|x| true) == [1]", "`retain` is not available"),
            ("let a = [1]; a.dedup(); true", "`dedup` is not available"),
            (
                "let a = [1]; a.sort(|x, y| 0); true",
                "`sort` is not available",
            ),
            ("[1].order(|x, y| 0) == [1]", "`order` is not available"),
            ("[1].zip([2], |x, y| x) == [1]", "`zip` is not available"),
            ("[1].filter(\"f\") == [1]", "`filter` is not available"),
            (
                "#{a: 1}.filter(|k, v| true) == #{}",
                "`filter` is not available",
            ),
            ("#{a: 1}.map(|k, v| v) == #{}", "`map` is not available"),
        ] {
            let got = run(&sandbox, src);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(error)),
                "{src}: {got:?}"
            );
        }
    }
}
