//! vCloud Director paging, shared by every paged query: `page` counts from
//! 1, `pageSize` defaults to 25 and is at most 128 (larger is 400, never
//! silently clamped).

use serde::Deserialize;

use crate::error::ApiError;

/// The page size when none is asked for.
pub(crate) const DEFAULT_PAGE_SIZE: i64 = 25;
/// The largest page size served.
pub(crate) const MAX_PAGE_SIZE: i64 = 128;

/// `?page=&pageSize=` of a request.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    pub(crate) page: Option<i64>,
    #[serde(rename = "pageSize")]
    pub(crate) page_size: Option<i64>,
}

/// A valid page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    /// From 1.
    pub(crate) number: i64,
    /// 1 to [`MAX_PAGE_SIZE`].
    pub(crate) size: i64,
}

impl PageQuery {
    /// The page asked for, or a 400 that says what is allowed.
    pub(crate) fn page(&self) -> Result<Page, ApiError> {
        let number = self.page.unwrap_or(1);
        let size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if number < 1 {
            return Err(ApiError::bad_request("`page` counts from 1."));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(ApiError::bad_request(format!(
                "`pageSize` must be between 1 and {MAX_PAGE_SIZE}; ask for the next page instead."
            )));
        }
        Ok(Page { number, size })
    }
}

impl Page {
    /// How many items come before this page.
    pub(crate) fn offset(self) -> i64 {
        (self.number - 1).saturating_mul(self.size)
    }

    /// How many pages `total` items fill.
    pub(crate) fn count(self, total: i64) -> i64 {
        (total.max(0) + self.size - 1) / self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(page: Option<i64>, page_size: Option<i64>) -> Option<Page> {
        PageQuery { page, page_size }.page().ok()
    }

    #[test]
    fn defaults_to_the_first_page_of_25() {
        assert_eq!(
            page(None, None),
            Some(Page {
                number: 1,
                size: 25
            })
        );
    }

    #[test]
    fn refuses_page_0_and_sizes_outside_1_to_128() {
        assert_eq!(page(Some(0), None), None);
        assert_eq!(page(None, Some(0)), None);
        assert_eq!(page(None, Some(129)), None);
        assert!(page(None, Some(128)).is_some());
    }

    #[test]
    fn counts_offsets_and_pages() {
        let third = Page {
            number: 3,
            size: 10,
        };
        assert_eq!(third.offset(), 20);
        assert_eq!(
            (third.count(0), third.count(10), third.count(11)),
            (0, 1, 2)
        );
        assert_eq!(
            Page {
                number: i64::MAX,
                size: 128
            }
            .offset(),
            i64::MAX
        );
    }
}
