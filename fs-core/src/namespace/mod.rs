//! The namespace: inodes, directory entries, links, rename, attributes and xattrs. Each
//! operation works on any [`ItemsMut`](crate::state::ItemsMut): the pending view of group
//! commit (`state/pending.rs`: atomic at once, durable at the next commit) or a cow
//! transaction (orphan cleanup, deleting an inode at its last close or at the commit after
//! its unlink).
//!
//! Invariants (fsck checks them):
//! - every name is in three items: DIR_ITEM `(dir, hash)`, DIR_INDEX `(dir, index)` and the
//!   child's INODE_REF `(child, dir)`, with the same index;
//! - a file's `nlink` is its number of names; a directory's is 2 + its subdirectories, and
//!   a directory has exactly one name;
//! - an inode with `nlink` 0 exists only while open, with an ORPHAN_ITEM, so a crash frees it
//!   at the next mount.

mod dir;
mod inode;
mod link;
mod path;
mod rename;
mod xattr;

pub(crate) use crate::state::{load_inode, try_inode};
pub(crate) use dir::{dir_add, dir_lookup, dir_names, dir_remove, readdir_items};
pub(crate) use inode::{delete_inode, save_inode};
pub(crate) use link::{check_name, create_in, drop_link, fresh_inode, NewInode};
pub(crate) use path::attrs_in;
pub use rename::RenameFlags;
pub(crate) use rename::{parent_of, rename_in};
pub use xattr::XattrFlags;
pub(crate) use xattr::{xattr_get, xattr_list, xattr_remove, xattr_set};
