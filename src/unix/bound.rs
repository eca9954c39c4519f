//! What a bound Unix socket leaves in the filesystem, shared by all handles of the socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tempfile::TempDir;

use crate::unix::socket_file::SocketFile;

/// The socket file a socket is bound at, and the private directory around it for `bind_temp`,
/// shared by the handles that own them (every `try_clone` of a listener): the last of them to
/// close removes them, so a clone is never left listening at a path that is gone, and nothing is
/// removed twice. Empty for a socket adopted from a descriptor, which has no file of ours.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bound(Option<Arc<Files>>);

#[derive(Debug)]
struct Files {
    // Field order is drop order: the socket file (and its lock), then the directory.
    file: SocketFile,
    dir: Option<TempDir>,
    kept: AtomicBool,
}

impl Bound {
    /// The files of a socket just bound by msgsock.
    pub(crate) fn new(file: SocketFile, dir: Option<TempDir>) -> Bound {
        Bound(Some(Arc::new(Files {
            file,
            dir,
            kept: AtomicBool::new(false),
        })))
    }

    /// Leaves the files in place for good, whichever handle closes last: the socket is handed
    /// over as a descriptor that is still bound there.
    pub(crate) fn keep(self) {
        if let Some(files) = self.0 {
            files.kept.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        if *self.kept.get_mut() {
            self.file.keep();
            if let Some(dir) = self.dir.take() {
                let _ = dir.keep();
            }
        }
    }
}
