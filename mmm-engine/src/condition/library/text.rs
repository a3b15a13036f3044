//! String functions whose result can be larger than their input, and the text of values
//! (`to_string` and friends, concatenation, interpolation), each refusing a result past the
//! string limit before building it.

use std::fmt::Write as _;

use rhai::{
    Array, Dynamic, Engine, FuncRegistration, ImmutableString, Map, NativeCallContext, INT,
};

use super::{check_array, check_string, room_after, string_limit, Res};
use crate::condition::budget::{exceed, halt, stopped, Stop, MAX_VALUE_DEPTH};

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
pub(super) fn strings(engine: &mut Engine) {
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
pub(super) fn formatting(engine: &mut Engine) {
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
