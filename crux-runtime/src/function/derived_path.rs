//! A function's derived Convex path (`dir/file:export`, from `module_path!()` and the
//! export name), built at compile time by [`Function::path`](super::Function::path)'s
//! default body, so a generated function needs no `path` fn and no `static` of its own
//! (each cost every incremental rebuild of a crate of handlers, used or not).

use std::sync::Mutex;

use super::Metadata;
use crate::helpers::lock;

/// The longest derived path built at compile time; a longer one is built once at run time
/// and kept in [`interned`].
const CAPACITY: usize = 128;

/// A derived path built in a `const`: its bytes and length (0 when it did not fit).
pub(super) struct DerivedPath {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl DerivedPath {
    /// [`Metadata::convex_path`] without the override, computed by the compiler: the module
    /// path without its crate, `::` as `/` (the crate name alone for the crate's root
    /// module), then `:` and the export name.
    pub(super) const fn of(metadata: &Metadata) -> Self {
        let mut path = Self {
            bytes: [0; CAPACITY],
            len: 0,
        };
        let module = metadata.module_path.as_bytes();
        let crate_end = find_separator(module, 0);
        if crate_end == module.len() {
            path.push(module, 0, module.len());
        } else {
            let mut start = crate_end + 2;
            loop {
                let end = find_separator(module, start);
                path.push(module, start, end);
                if end == module.len() {
                    break;
                }
                path.push(b"/", 0, 1);
                start = end + 2;
            }
        }
        path.push(b":", 0, 1);
        let export = metadata.export.as_bytes();
        path.push(export, 0, export.len());
        if path.len > CAPACITY {
            path.len = 0;
        }
        path
    }

    /// Appends `from[start..end]`; past the capacity only counts, so `len` says it overflowed.
    const fn push(&mut self, from: &[u8], start: usize, end: usize) {
        let mut i = start;
        while i < end {
            if self.len < CAPACITY {
                self.bytes[self.len] = from[i];
            }
            self.len += 1;
            i += 1;
        }
    }

    /// The path as text; empty when it did not fit. `const`, so the check of the bytes is
    /// the compiler's too.
    pub(super) const fn as_str(&self) -> &str {
        match std::str::from_utf8(self.bytes.split_at(self.len).0) {
            Ok(path) => path,
            // Cut only at ASCII `::`, so never reached; `""` sends the call to `interned`.
            Err(_) => "",
        }
    }
}

/// The index of the next `::` in `module` from `start`, or its length.
const fn find_separator(module: &[u8], start: usize) -> usize {
    let mut i = start;
    while i + 1 < module.len() {
        if module[i] == b':' && module[i + 1] == b':' {
            return i;
        }
        i += 1;
    }
    module.len()
}

/// A derived path too long for [`CAPACITY`]: built on the function's first call and kept
/// for the process, found again by its module path and export name (a hit builds and
/// allocates nothing: a lock and a short scan of the few such functions).
#[cold]
pub(super) fn interned(metadata: &Metadata) -> &'static str {
    /// (module path, export, the derived path) of each function whose path was too long.
    static LONG: Mutex<Vec<(&'static str, &'static str, &'static str)>> = Mutex::new(Vec::new());
    let mut long = lock(&LONG);
    let key = (metadata.module_path, metadata.export);
    if let Some((_, _, path)) = long.iter().find(|(m, e, _)| (*m, *e) == key) {
        return path;
    }
    let path: &'static str = Box::leak(metadata.convex_path().into_boxed_str());
    long.push((key.0, key.1, path));
    path
}
