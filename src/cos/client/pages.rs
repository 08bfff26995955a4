//! Paging of the multipart listings (List Parts, List Multipart Uploads),
//! written once like [`ListWalker`](crate::cos::ListWalker): each listing
//! says how to ask for the page after a marker and where its answer
//! continues; [`HttpClient::collect`] walks the pages. A walk ends at the
//! page that is not truncated or that would not move the marker on.

use reqwest::Method;

use super::HttpClient;
use super::call::Call;
use crate::cos::{CosResult, PartInfo, UploadInfo, path, xml};

/// One page of a listing: its items and the marker of the next page
/// (`None` after the last).
pub(super) struct Page<M, T> {
    /// What the page lists.
    pub items: Vec<T>,
    /// Where the next page starts.
    pub next: Option<M>,
}

/// A listing paged by a marker.
pub(super) trait Listing {
    /// Where a page starts; the default is the first page.
    type Marker: Default;
    /// What a page lists.
    type Item;
    /// The request for the page after `marker`.
    fn call(&self, marker: &Self::Marker) -> Call<'_>;
    /// The page in the body answering the request after `marker`.
    fn page(&self, body: &[u8], marker: &Self::Marker)
    -> CosResult<Page<Self::Marker, Self::Item>>;
}

impl HttpClient {
    /// Every item of `listing`, page after page from the first.
    pub(super) async fn collect<L: Listing>(&self, listing: &L) -> CosResult<Vec<L::Item>> {
        let mut items = Vec::new();
        let mut marker = Some(L::Marker::default());
        while let Some(current) = marker {
            let reply = self.execute(&listing.call(&current)).await?;
            let page = listing.page(&reply.body, &current)?;
            items.extend(page.items);
            marker = page.next;
        }
        Ok(items)
    }
}

/// List Parts of one upload; the marker is the last part number seen.
pub(super) struct Parts<'a> {
    /// The object being uploaded.
    pub key: &'a str,
    /// Its upload id.
    pub upload_id: &'a str,
}

impl Listing for Parts<'_> {
    type Marker = u32;
    type Item = PartInfo;

    fn call(&self, marker: &u32) -> Call<'_> {
        Call::new("list_parts", Method::GET, Some(self.key))
            .param("uploadId", self.upload_id)
            .param("part-number-marker", marker.to_string())
    }

    fn page(&self, body: &[u8], marker: &u32) -> CosResult<Page<u32, PartInfo>> {
        let page: xml::ListPartsResult = xml::from_xml(body)?;
        let next = page.next_part_number_marker;
        let more = page.is_truncated && next > *marker;
        Ok(Page {
            items: page.parts(),
            next: more.then_some(next),
        })
    }
}

/// List Multipart Uploads under a prefix; the marker is the (decoded) key
/// marker and the upload id marker.
pub(super) struct Uploads<'a> {
    /// Only uploads of keys starting with this.
    pub prefix: &'a str,
}

impl Listing for Uploads<'_> {
    type Marker = (String, String);
    type Item = UploadInfo;

    fn call(&self, (key_marker, id_marker): &(String, String)) -> Call<'_> {
        Call::new("list_uploads", Method::GET, None)
            .param("uploads", "")
            .param("prefix", self.prefix)
            .param("key-marker", key_marker.clone())
            .param("upload-id-marker", id_marker.clone())
            .param("encoding-type", "url")
    }

    fn page(
        &self,
        body: &[u8],
        (key_marker, id_marker): &(String, String),
    ) -> CosResult<Page<(String, String), UploadInfo>> {
        let page: xml::ListMultipartUploadsResult = xml::from_xml(body)?;
        let items = page.uploads()?;
        let next = match (
            page.is_truncated,
            page.next_key_marker,
            page.next_upload_id_marker,
        ) {
            (true, Some(k), Some(u)) if (&k, &u) != (key_marker, id_marker) => {
                Some((path::decode(&k)?, u))
            }
            _ => None,
        };
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_page(truncated: bool, next: u32) -> String {
        xml::to_xml(&xml::ListPartsResult {
            is_truncated: truncated,
            next_part_number_marker: next,
            ..Default::default()
        })
    }

    #[test]
    fn parts_continue_while_truncated_and_moving() {
        let l = Parts {
            key: "k",
            upload_id: "u",
        };
        let next = |body: String, marker| l.page(body.as_bytes(), &marker).unwrap().next;
        assert_eq!(next(parts_page(true, 3), 0), Some(3));
        assert_eq!(next(parts_page(false, 3), 0), None);
        assert_eq!(next(parts_page(true, 3), 3), None, "a marker that stays");
        let call = l.call(&3);
        assert_eq!(call.key, Some("k"));
        assert_eq!(
            call.params,
            [
                ("uploadId".to_string(), "u".to_string()),
                ("part-number-marker".into(), "3".into())
            ]
        );
    }

    fn uploads_page(truncated: bool, key: Option<&str>, id: Option<&str>) -> String {
        xml::to_xml(&xml::ListMultipartUploadsResult {
            is_truncated: truncated,
            next_key_marker: key.map(str::to_string),
            next_upload_id_marker: id.map(str::to_string),
            ..Default::default()
        })
    }

    #[test]
    fn uploads_continue_from_the_decoded_key_marker() {
        let l = Uploads { prefix: "p/" };
        let next = |body: String, marker: (&str, &str)| {
            let marker = (marker.0.to_string(), marker.1.to_string());
            l.page(body.as_bytes(), &marker).unwrap().next
        };
        let page = uploads_page(true, Some("a%20b"), Some("u1"));
        assert_eq!(next(page, ("", "")), Some(("a b".into(), "u1".into())));
        assert_eq!(
            next(uploads_page(false, Some("a"), Some("u1")), ("", "")),
            None
        );
        assert_eq!(next(uploads_page(true, Some("a"), None), ("", "")), None);
        let page = uploads_page(true, Some("a"), Some("u1"));
        assert_eq!(next(page, ("a", "u1")), None, "markers that stay");
        let call = l.call(&("a b".into(), "u1".into()));
        let names: Vec<&str> = call.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "uploads",
                "prefix",
                "key-marker",
                "upload-id-marker",
                "encoding-type"
            ]
        );
        assert_eq!(call.params[2].1, "a b");
    }
}
