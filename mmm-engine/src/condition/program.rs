//! The flat form of a native condition: the expression tree [`native::parse`] builds,
//! compiled once at load into a list of instructions run by one loop, without recursion.
//!
//! The machine has one register (`acc`, the value of the last instruction) and a small
//! stack for the left operand of a comparison between two computed values. `&&` and `||`
//! are conditional jumps over their right operand, so short circuits skip its code; the
//! commonest conditions (`path OP literal`, joined by `&&`/`||`) never touch the stack.
//! Paths are read through the per-decision [`PathCache`], indexed by the process-wide id of
//! the path: a path is resolved once per decision however many candidates read it, and a
//! repeated read is an index into an array, not a search.
//!
//! What gives up (a non-boolean operand of `!`, `&&` or `||`; a method on a non-string; a
//! path through a non-map) gives up the whole condition, which then runs on Rhai, exactly
//! as the tree evaluator it replaces did.
//!
//! [`native::parse`]: super::native::parse

use std::cmp::Ordering;
use std::sync::Arc;

use super::glob::Glob;
use super::native::{compare, lit_value, resolve, CmpOp, Expr, GiveUp, Lit, V};
use crate::env::{Env, Path};

/// Deepest operand stack a program may need; deeper conditions stay on Rhai.
const MAX_STACK: usize = 16;

/// Longest `glob` match (pattern bytes × text bytes) run natively. Rhai's `glob` checks
/// the evaluation's time limit while it matches; a match this small ends long before any
/// limit, so the native one need not check, and longer ones run on Rhai.
const MAX_NATIVE_GLOB_WORK: usize = 1 << 16;

/// One instruction.
#[derive(Debug, Clone)]
enum Op {
    /// `acc = (path OP literal)`, then the jump: the left operand of `&&`/`||` that is a
    /// comparison with a literal carries the jump itself (one instruction, not two).
    Test(Test),
    /// `acc = path`.
    Load(Operand),
    /// `acc = literal`.
    Const(Lit),
    /// Pushes `acc`.
    Push,
    /// `acc = (popped OP acc)`.
    Compare(CmpOp),
    /// `acc = !acc`; gives up unless `acc` is a boolean.
    Not,
    /// Gives up unless `acc` is a boolean (the right operand of `&&` and `||`).
    Bool,
    /// Gives up unless `acc` is a boolean; jumps to the target when it is false.
    JumpIfFalse(u16),
    /// Gives up unless `acc` is a boolean; jumps to the target when it is true.
    JumpIfTrue(u16),
    /// `acc = path.starts_with(prefix)`; gives up unless the path holds a string.
    StartsWith(Operand, Box<str>),
    /// `acc = path in [literals]` (Rhai's `==` on each element in turn).
    In(Operand, Box<[Lit]>),
    /// `acc = glob(pattern, path)`; gives up unless the path holds a string within the
    /// sizes the sandbox allows and the match is small.
    Glob(Operand, Box<GlobOp>),
}

/// A path an instruction reads: its interned id (its slot in the [`PathCache`]) and its
/// place in [`Program::paths`], needed only the first time a decision reads it.
#[derive(Debug, Clone, Copy)]
struct Operand {
    id: u32,
    at: u16,
}

/// `path OP literal`, the commonest instruction, prepared at load so that running it is
/// one read of the path, one comparison with a literal of known type and one bit test.
#[derive(Debug, Clone)]
struct Test {
    operand: Operand,
    holds: Holds,
    jump: Jump,
    lit: TestLit,
}

/// The literal of a [`Test`].
#[derive(Debug, Clone)]
enum TestLit {
    Scalar(Scalar),
    Str(Box<str>),
}

/// A number or boolean literal.
#[derive(Debug, Clone, Copy)]
enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    /// How `v` compares with the literal, as Rhai compares them (`None`: they do not
    /// compare). Mirrors [`compare`] for a literal right operand.
    #[expect(
        clippy::cast_precision_loss,
        reason = "Rhai compares INT with FLOAT by converting the INT to FLOAT; so must we"
    )]
    #[inline(always)]
    fn ordering(self, v: V<'_>) -> Option<Ordering> {
        match (self, v) {
            (Scalar::Int(y), V::Int(x)) => Some(x.cmp(&y)),
            (Scalar::Int(y), V::Float(x)) => x.partial_cmp(&(y as f64)),
            (Scalar::Float(y), V::Int(x)) => (x as f64).partial_cmp(&y),
            (Scalar::Float(y), V::Float(x)) => x.partial_cmp(&y),
            (Scalar::Bool(y), V::Bool(x)) => Some(x.cmp(&y)),
            _ => None,
        }
    }
}

/// Which outcomes of comparing a path with a literal make a [`Test`] hold: one bit per
/// ordering, and one for values that do not compare (mismatched types, which Rhai finds
/// unequal and unordered: only `!=` holds). Equal to [`compare`] with the operator, without
/// dispatching on the operator at run time.
#[derive(Debug, Clone, Copy)]
struct Holds(u8);

impl Holds {
    const LESS: u8 = 1;
    const EQUAL: u8 = 2;
    const GREATER: u8 = 4;
    const UNORDERED: u8 = 8;

    fn new(op: CmpOp) -> Holds {
        Holds(match op {
            CmpOp::Eq => Holds::EQUAL,
            CmpOp::Ne => Holds::LESS | Holds::GREATER | Holds::UNORDERED,
            CmpOp::Lt => Holds::LESS,
            CmpOp::Le => Holds::LESS | Holds::EQUAL,
            CmpOp::Gt => Holds::GREATER,
            CmpOp::Ge => Holds::EQUAL | Holds::GREATER,
        })
    }

    #[inline(always)]
    fn on(self, ord: Option<Ordering>) -> bool {
        let bit = match ord {
            Some(Ordering::Less) => Holds::LESS,
            Some(Ordering::Equal) => Holds::EQUAL,
            Some(Ordering::Greater) => Holds::GREATER,
            None => Holds::UNORDERED,
        };
        self.0 & bit != 0
    }
}

impl Test {
    /// How the path's value compares with the literal, as Rhai compares them (`None`:
    /// they do not compare). Mirrors [`compare`] for a literal right operand.
    #[inline(always)]
    fn ordering(&self, v: V<'_>) -> Option<Ordering> {
        match (&self.lit, v) {
            (TestLit::Scalar(y), v) => y.ordering(v),
            (TestLit::Str(y), V::Str(x)) => Some(x.cmp(&**y)),
            (TestLit::Str(_), _) => None,
        }
    }
}

/// Where a [`Op::Test`] goes next.
#[derive(Debug, Clone, Copy)]
enum Jump {
    Next,
    IfFalse(u16),
    IfTrue(u16),
}

#[derive(Debug, Clone)]
struct GlobOp {
    pattern_len: usize,
    glob: Arc<Glob>,
}

/// A compiled native condition.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    ops: Vec<Op>,
    /// The paths the instructions read, by operand number: the interned id and the path.
    paths: Vec<(u32, Path)>,
    /// The deepest the operand stack gets.
    depth: usize,
    /// The tests when the program is nothing but `test && test && …` (the commonest
    /// condition): they are then all run and their results and-ed without a branch, which
    /// gives the same answer as the short circuit (a test has no effect) without a
    /// mispredicted jump per test. Should one of them give up, the short circuit runs.
    conjunction: Option<Box<[Test]>>,
}

/// Whether an expression can only produce a boolean (or give up).
fn is_boolean(expr: &Expr) -> bool {
    !matches!(
        expr,
        Expr::Path(..) | Expr::Lit(Lit::Int(_) | Lit::Float(_) | Lit::Str(_))
    )
}

struct Compiler {
    ops: Vec<Op>,
    paths: Vec<(u32, Path)>,
    depth: usize,
    max_depth: usize,
}

impl Compiler {
    fn path(&mut self, id: u32, path: &Path) -> Option<Operand> {
        let at = match self.paths.iter().position(|(i, _)| *i == id) {
            Some(at) => at,
            None => {
                self.paths.push((id, path.clone()));
                self.paths.len() - 1
            }
        };
        Some(Operand {
            id,
            at: u16::try_from(at).ok()?,
        })
    }

    fn here(&self) -> Option<u16> {
        u16::try_from(self.ops.len()).ok()
    }

    /// Emits `expr`, leaving its value in `acc`.
    fn expr(&mut self, expr: &Expr) -> Option<()> {
        match expr {
            Expr::Lit(lit) => self.ops.push(Op::Const(lit.clone())),
            Expr::Path(id, path) => {
                let p = self.path(*id, path)?;
                self.ops.push(Op::Load(p));
            }
            Expr::CmpPathLit(op, id, path, lit) => {
                let operand = self.path(*id, path)?;
                self.ops.push(Op::Test(Test {
                    operand,
                    holds: Holds::new(*op),
                    jump: Jump::Next,
                    lit: match lit {
                        Lit::Int(i) => TestLit::Scalar(Scalar::Int(*i)),
                        Lit::Float(f) => TestLit::Scalar(Scalar::Float(*f)),
                        Lit::Str(s) => TestLit::Str(s.clone().into_boxed_str()),
                        Lit::Bool(b) => TestLit::Scalar(Scalar::Bool(*b)),
                    },
                }));
            }
            Expr::Not(inner) => {
                self.expr(inner)?;
                self.ops.push(Op::Not);
            }
            Expr::And(l, r) | Expr::Or(l, r) => {
                self.expr(l)?;
                // A left operand that is one comparison with a literal carries the jump
                // itself; any other gets a jump instruction after it.
                let fused = matches!(**l, Expr::CmpPathLit(..));
                let jump = if fused {
                    self.ops.len().checked_sub(1)?
                } else {
                    self.ops.push(Op::Bool);
                    self.ops.len() - 1
                };
                self.expr(r)?;
                if !is_boolean(r) {
                    self.ops.push(Op::Bool);
                }
                let end = self.here()?;
                let and = matches!(expr, Expr::And(..));
                match (fused, self.ops.get_mut(jump)?) {
                    (true, Op::Test(test)) => {
                        test.jump = if and {
                            Jump::IfFalse(end)
                        } else {
                            Jump::IfTrue(end)
                        };
                    }
                    (false, op) => {
                        *op = if and {
                            Op::JumpIfFalse(end)
                        } else {
                            Op::JumpIfTrue(end)
                        };
                    }
                    (true, _) => return None,
                }
            }
            Expr::Cmp(op, l, r) => {
                self.expr(l)?;
                self.ops.push(Op::Push);
                self.depth += 1;
                self.max_depth = self.max_depth.max(self.depth);
                self.expr(r)?;
                self.depth -= 1;
                self.ops.push(Op::Compare(*op));
            }
            Expr::StartsWith(id, path, prefix) => {
                let p = self.path(*id, path)?;
                self.ops
                    .push(Op::StartsWith(p, prefix.clone().into_boxed_str()));
            }
            Expr::In(id, path, list) => {
                let p = self.path(*id, path)?;
                self.ops.push(Op::In(p, list.clone().into_boxed_slice()));
            }
            Expr::Glob(pattern, id, path) => {
                let p = self.path(*id, path)?;
                let glob = Arc::new(Glob::new(pattern).ok()?);
                self.ops.push(Op::Glob(
                    p,
                    Box::new(GlobOp {
                        pattern_len: pattern.len(),
                        glob,
                    }),
                ));
            }
        }
        Some(())
    }
}

impl Program {
    /// Compiles `expr`; `None` when it needs more than the machine offers (Rhai then runs
    /// the condition).
    pub fn compile(expr: &Expr) -> Option<Program> {
        let mut c = Compiler {
            ops: Vec::new(),
            paths: Vec::new(),
            depth: 0,
            max_depth: 0,
        };
        c.expr(expr)?;
        if !is_boolean(expr) {
            c.ops.push(Op::Bool);
        }
        let conjunction = conjunction(&c.ops);
        (c.max_depth <= MAX_STACK).then_some(Program {
            ops: c.ops,
            paths: c.paths,
            depth: c.max_depth,
            conjunction,
        })
    }

    /// Runs the program; `Err(GiveUp)` means "ask Rhai". `limits` are the sandbox's glob
    /// size limits (pattern, text): beyond them Rhai raises the error.
    pub fn run<'a>(
        &'a self,
        env: &Env<'a>,
        cache: &mut PathCache<'a>,
        glob_limits: (usize, usize),
    ) -> Result<bool, GiveUp> {
        if let Some(tests) = &self.conjunction {
            if let Ok(held) = self.all_hold(tests, env, cache) {
                return Ok(held);
            }
        }
        // Empty until a comparison of two computed values needs it: most programs never
        // allocate it.
        let mut stack: Vec<V<'a>> = Vec::new();
        let mut acc = V::Unit;
        let mut pc = 0;
        // Tests and jumps, what most conditions are made of, run here; the other
        // instructions out of line, so that this loop stays small.
        while let Some(op) = self.ops.get(pc) {
            pc += 1;
            acc = match op {
                Op::Test(test) => {
                    let v = self.load(test.operand, env, cache)?;
                    let held = test.holds.on(test.ordering(v));
                    match test.jump {
                        Jump::IfFalse(to) if !held => pc = usize::from(to),
                        Jump::IfTrue(to) if held => pc = usize::from(to),
                        _ => {}
                    }
                    V::Bool(held)
                }
                Op::JumpIfFalse(to) => {
                    if !boolean(acc)? {
                        pc = usize::from(*to);
                    }
                    acc
                }
                Op::JumpIfTrue(to) => {
                    if boolean(acc)? {
                        pc = usize::from(*to);
                    }
                    acc
                }
                op => self.step(op, acc, &mut stack, env, cache, glob_limits)?,
            };
        }
        boolean(acc)
    }

    /// Whether the program runs as a conjunction of tests.
    #[cfg(test)]
    pub fn is_conjunction(&self) -> bool {
        self.conjunction.is_some()
    }

    /// Whether running every test gives up here (so that `run` answered with the short
    /// circuit).
    #[cfg(test)]
    pub fn all_tests_give_up(&self, env: &Env<'_>) -> bool {
        self.conjunction.as_ref().is_some_and(|tests| {
            self.all_hold(tests, env, &mut PathCache::default())
                .is_err()
        })
    }

    /// Whether every test holds, each run (no short circuit, no branch on a result).
    #[inline]
    fn all_hold<'a>(
        &'a self,
        tests: &'a [Test],
        env: &Env<'a>,
        cache: &mut PathCache<'a>,
    ) -> Result<bool, GiveUp> {
        let mut all = true;
        for test in tests {
            let v = self.load(test.operand, env, cache)?;
            all &= test.holds.on(test.ordering(v));
        }
        Ok(all)
    }

    /// Runs one instruction other than a test or a jump; returns the new `acc`.
    #[inline(never)]
    fn step<'a>(
        &'a self,
        op: &'a Op,
        acc: V<'a>,
        stack: &mut Vec<V<'a>>,
        env: &Env<'a>,
        cache: &mut PathCache<'a>,
        glob_limits: (usize, usize),
    ) -> Result<V<'a>, GiveUp> {
        Ok(match op {
            // `run` handles these itself; should one come here, Rhai decides.
            Op::Test(_) | Op::JumpIfFalse(_) | Op::JumpIfTrue(_) => return Err(GiveUp),
            Op::Load(p) => self.load(*p, env, cache)?,
            Op::Const(lit) => lit_value(lit),
            Op::Push => {
                if stack.capacity() == 0 {
                    stack.reserve_exact(self.depth);
                }
                stack.push(acc);
                acc
            }
            Op::Compare(cmp) => V::Bool(compare(*cmp, stack.pop().ok_or(GiveUp)?, acc)),
            Op::Not => V::Bool(!boolean(acc)?),
            Op::Bool => V::Bool(boolean(acc)?),
            Op::StartsWith(p, prefix) => match self.load(*p, env, cache)? {
                V::Str(s) => V::Bool(s.starts_with(&**prefix)),
                _ => return Err(GiveUp),
            },
            Op::In(p, list) => {
                let v = self.load(*p, env, cache)?;
                V::Bool(
                    list.iter()
                        .any(|item| compare(CmpOp::Eq, v, lit_value(item))),
                )
            }
            Op::Glob(p, g) => match self.load(*p, env, cache)? {
                V::Str(text)
                    if g.pattern_len <= glob_limits.0
                        && text.len() <= glob_limits.1
                        && g.pattern_len.max(1).saturating_mul(text.len().max(1))
                            <= MAX_NATIVE_GLOB_WORK =>
                {
                    V::Bool(
                        g.glob
                            .is_match(text, || Ok::<(), ()>(()))
                            .map_err(|_| GiveUp)?,
                    )
                }
                _ => return Err(GiveUp),
            },
        })
    }

    #[inline]
    fn load<'a>(
        &'a self,
        operand: Operand,
        env: &Env<'a>,
        cache: &mut PathCache<'a>,
    ) -> Result<V<'a>, GiveUp> {
        let slot = usize::try_from(operand.id).map_err(|_| GiveUp)?;
        match cache.slots.get(slot) {
            Some(Slot::Value(v)) => Ok(*v),
            Some(Slot::Outside) => Err(GiveUp),
            Some(Slot::Unread) | None => {
                let (_, path) = self.paths.get(usize::from(operand.at)).ok_or(GiveUp)?;
                cache.resolve(slot, path, env)
            }
        }
    }
}

/// Most tests a [`Quick`] condition holds.
const QUICK_TESTS: usize = 4;

/// A condition that is `&&` over at most [`QUICK_TESTS`] comparisons of a path with a
/// number or a boolean (a single comparison included), copied into the candidate list of
/// each signal kind at load. Those lists are contiguous, so a decision runs such conditions
/// without reading the compiled playbooks themselves, scattered over the heap: that read,
/// a cache miss or more per candidate, cost more than the tests. It reads only paths an
/// earlier condition of the decision resolved, and answers nothing otherwise (the program
/// then runs as usual).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quick {
    tests: [QuickTest; QUICK_TESTS],
    len: u8,
}

/// A [`Test`] with a [`Scalar`] literal, the path given by its slot alone.
#[derive(Debug, Clone, Copy)]
struct QuickTest {
    slot: u32,
    holds: Holds,
    lit: Scalar,
}

impl QuickTest {
    const NONE: QuickTest = QuickTest {
        slot: 0,
        holds: Holds(0),
        lit: Scalar::Bool(false),
    };
}

impl Quick {
    /// Whether the condition holds, when every path it reads is resolved in `cache` to a
    /// value in the native subset; `None` otherwise.
    #[inline]
    pub fn run(&self, cache: &PathCache<'_>) -> Option<bool> {
        let mut all = true;
        for test in self.tests.get(..usize::from(self.len))? {
            let slot = usize::try_from(test.slot).ok()?;
            let Some(Slot::Value(v)) = cache.slots.get(slot) else {
                return None;
            };
            all &= test.holds.on(test.lit.ordering(*v));
        }
        Some(all)
    }
}

impl Program {
    /// The program as a [`Quick`] condition, when it is one.
    pub fn quick(&self) -> Option<Quick> {
        let mut quick = Quick {
            tests: [QuickTest::NONE; QUICK_TESTS],
            len: 0,
        };
        for t in and_tests(&self.ops)? {
            let TestLit::Scalar(lit) = t.lit else {
                return None;
            };
            *quick.tests.get_mut(usize::from(quick.len))? = QuickTest {
                slot: t.operand.id,
                holds: t.holds,
                lit,
            };
            quick.len += 1;
        }
        Some(quick)
    }
}

/// The tests of `ops` when the program is `&&` over one or more tests and nothing else
/// (however the `&&`s nest): such a program holds exactly when every test does.
fn and_tests(ops: &[Op]) -> Option<Vec<&Test>> {
    let mut tests = Vec::new();
    for op in ops {
        match op {
            Op::Test(t) if matches!(t.jump, Jump::IfFalse(_) | Jump::Next) => tests.push(t),
            Op::JumpIfFalse(_) => {}
            _ => return None,
        }
    }
    (!tests.is_empty()).then_some(tests)
}

/// The tests of a conjunction of two or more (one test runs as fast on its own).
fn conjunction(ops: &[Op]) -> Option<Box<[Test]>> {
    let tests = and_tests(ops).filter(|t| t.len() > 1)?;
    Some(tests.into_iter().cloned().collect())
}

fn boolean(v: V<'_>) -> Result<bool, GiveUp> {
    match v {
        V::Bool(b) => Ok(b),
        _ => Err(GiveUp),
    }
}

/// What one path holds in this decision.
#[derive(Debug, Clone, Copy)]
enum Slot<'a> {
    Unread,
    Value(V<'a>),
    /// Outside the native subset (an array, a map, a path through a non-map).
    Outside,
}

/// Paths already resolved in this decision, by interned id.
#[derive(Default)]
pub(crate) struct PathCache<'a> {
    slots: Vec<Slot<'a>>,
}

impl<'a> PathCache<'a> {
    /// The first read of a path in this decision.
    #[inline(never)]
    fn resolve(&mut self, at: usize, path: &Path, env: &Env<'a>) -> Result<V<'a>, GiveUp> {
        let found = resolve(env.lookup(path));
        if self.slots.len() <= at {
            self.slots.resize(at + 1, Slot::Unread);
        }
        if let Some(slot) = self.slots.get_mut(at) {
            *slot = found.map_or(Slot::Outside, Slot::Value);
        }
        found.ok_or(GiveUp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test with a literal decides as `compare` does, for every operator, every literal
    /// type and values of every type (equal, ordered either way, mismatched).
    #[test]
    fn tests_agree_with_compare() {
        let ops = [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ];
        let lits = [
            Lit::Int(2),
            Lit::Float(2.0),
            Lit::Float(2.5),
            Lit::Str("b".to_owned()),
            Lit::Bool(false),
            Lit::Bool(true),
        ];
        let values = [
            V::Unit,
            V::Bool(false),
            V::Bool(true),
            V::Int(1),
            V::Int(2),
            V::Int(3),
            V::Float(2.0),
            V::Float(2.5),
            V::Float(-0.5),
            V::Str("a"),
            V::Str("b"),
            V::Str("c"),
            V::Str(""),
        ];
        let mut held = 0;
        for op in ops {
            for lit in &lits {
                let Some(Op::Test(test)) =
                    Program::compile(&Expr::CmpPathLit(op, 0, path(), lit.clone()))
                        .and_then(|p| p.ops.into_iter().next())
                else {
                    panic!("{op:?} {lit:?} is not one test");
                };
                for v in values {
                    let expected = compare(op, v, lit_value(lit));
                    assert_eq!(
                        test.holds.on(test.ordering(v)),
                        expected,
                        "{v:?} {op:?} {lit:?}"
                    );
                    held += usize::from(expected);
                }
            }
        }
        // Both answers occur often (130 of the 468 cases hold) for the check to mean something.
        assert!((100..370).contains(&held), "{held}");
    }

    fn path() -> Path {
        Path {
            root: crate::env::Root::Signal,
            segs: vec![crate::env::Seg::Key("n".to_owned())],
        }
    }
}
