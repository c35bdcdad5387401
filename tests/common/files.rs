//! Files a test writes for the binary to read, such as a configuration file, removed again
//! when the test drops them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file in the system's temporary directory, unique to this process and call, deleted on
/// drop.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Writes `contents` to a new file whose name ends in `name`.
    pub fn new(name: &str, contents: &str) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let file_name = format!("anya-test-{}-{unique}-{name}", std::process::id());
        let path = std::env::temp_dir().join(file_name);
        std::fs::write(&path, contents).expect("the temporary directory is writable");
        TempFile { path }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // A file already gone is what dropping wants anyway.
        let _ = std::fs::remove_file(&self.path);
    }
}
