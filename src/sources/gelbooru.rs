//! The gelbooru family adapter (being written).

use url::Url;

use super::{Site, UpstreamError};
use crate::model::{PostPage, TagCandidate};

pub fn tags_url(site: &Site, _word: &str, _limit: u32) -> Url {
    site.endpoint("tags.json")
}

pub fn parse_tags(_body: &[u8]) -> Result<Vec<TagCandidate>, UpstreamError> {
    Err(UpstreamError::malformed(
        "tag list",
        "adapter not written yet",
    ))
}

pub fn posts_url(site: &Site, _tag: &str, _page: u32, _limit: u32) -> Url {
    site.endpoint("posts.json")
}

pub fn parse_posts(_site: &Site, _body: &[u8]) -> Result<PostPage, UpstreamError> {
    Err(UpstreamError::malformed(
        "post list",
        "adapter not written yet",
    ))
}

pub fn count_url(site: &Site, _tag: &str) -> Url {
    site.endpoint("count")
}

pub fn parse_xml_count(_body: &[u8]) -> Result<u64, UpstreamError> {
    Ok(0)
}

pub fn error_for(_site: &Site, status: u16, _body: &[u8]) -> UpstreamError {
    UpstreamError::Rejected {
        status,
        reason: String::new(),
    }
}
