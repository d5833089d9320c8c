//! Code addresses of one snapshotted process, for the unwinder: which file
//! (or the vDSO) holds an address, and that file's call-frame information,
//! loaded once per file for all processes.

use std::collections::HashMap;
use std::rc::Rc;

use super::{CallFrameInfo, CodeLocator};
use crate::maps::{self, Backing};
use crate::snapshot::{FileKey, FileState, Snapshot};
use crate::vdso::VdsoImage;

/// The vDSO has no (device, inode): a key no file can have.
const VDSO_KEY: FileKey = (u64::MAX, u64::MAX);

/// Every file's CFI, `None` for files without usable CFI.
pub(crate) type CfiFiles = HashMap<FileKey, Option<Rc<CallFrameInfo>>>;

pub(crate) struct ProcessCode<'a> {
    pub snapshot: &'a Snapshot,
    pub cfi: &'a mut CfiFiles,
    pub vdso: &'a mut Option<Option<VdsoImage>>,
}

impl CodeLocator for ProcessCode<'_> {
    fn is_code(&self, addr: u64) -> bool {
        maps::find(&self.snapshot.entries, addr).is_some_and(|i| self.snapshot.entries[i].executable)
    }

    fn locate(&mut self, addr: u64) -> Option<(FileKey, Rc<CallFrameInfo>, u64)> {
        let entry = &self.snapshot.entries[maps::find(&self.snapshot.entries, addr)?];
        if !entry.executable {
            return None;
        }
        let file_offset = entry.offset + (addr - entry.start);
        let key = match &entry.backing {
            Backing::File { .. } => (entry.dev, entry.inode),
            Backing::Special(name) if name == "[vdso]" => VDSO_KEY,
            _ => return None,
        };
        if !self.cfi.contains_key(&key) {
            let path = match self.snapshot.file(entry) {
                Some(FileState::Open(file)) if key != VDSO_KEY => file.read_path(),
                _ if key == VDSO_KEY => {
                    self.vdso.get_or_insert_with(VdsoImage::copy_own).as_ref().map(|image| image.fd_path.clone())
                }
                _ => None,
            };
            // Not opened for this process: another may have it open later,
            // so nothing is cached. A file that loads badly stays bad.
            let path = path?;
            self.cfi.insert(key, CallFrameInfo::load(&path).ok().map(Rc::new));
        }
        let cfi = self.cfi[&key].clone()?;
        let address = cfi.address_of(file_offset)?;
        Some((key, cfi, address))
    }
}
