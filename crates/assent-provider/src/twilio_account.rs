//! What Twilio's REST API says about the account's numbers, for the configuration check:
//! `GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PhoneNumber=…` (the number's
//! own SMS webhook) and the Messaging Services with their phone numbers
//! (`GET /v1/Services`, `GET /v1/Services/{sid}/PhoneNumbers` on messaging.twilio.com).
//! Lists are read a page at a time, and at most [`MAX_PAGES`] pages of each.

use std::time::Duration;

use serde::Deserialize;

/// The most pages of one list the check reads (50 entries a page).
pub const MAX_PAGES: usize = 20;
const PAGE_SIZE: usize = 50;

#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// `https://api.twilio.com`, or a local fake in tests.
    pub api_base: String,
    /// `https://messaging.twilio.com`, or a local fake in tests.
    pub messaging_base: String,
}

pub struct TwilioAccount {
    config: AccountConfig,
    http: reqwest::Client,
}

/// One of the account's numbers, as `IncomingPhoneNumbers` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IncomingNumber {
    pub sid: String,
    pub phone_number: String,
    #[serde(default)]
    pub sms_url: Option<String>,
    #[serde(default)]
    pub sms_method: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
}

/// A Messaging Service with the numbers in its sender pool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessagingService {
    pub sid: String,
    #[serde(default)]
    pub friendly_name: String,
    #[serde(default)]
    pub inbound_request_url: Option<String>,
    #[serde(default)]
    pub inbound_method: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
    /// Inbound messages go to the number's own SMS webhook, not the service's.
    #[serde(default)]
    pub use_inbound_webhook_on_number: bool,
    #[serde(skip)]
    pub numbers: Vec<String>,
}

#[derive(Deserialize)]
struct NumbersPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<IncomingNumber>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    next_page_url: Option<String>,
}

#[derive(Deserialize)]
struct ServicesPage {
    #[serde(default)]
    services: Vec<MessagingService>,
    #[serde(default)]
    meta: Meta,
}

#[derive(Deserialize)]
struct ServiceNumber {
    phone_number: String,
}

#[derive(Deserialize)]
struct ServiceNumbersPage {
    #[serde(default)]
    phone_numbers: Vec<ServiceNumber>,
    #[serde(default)]
    meta: Meta,
}

impl TwilioAccount {
    pub fn new(config: AccountConfig) -> Result<Self, String> {
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(TwilioAccount { config, http })
    }

    pub fn account_sid(&self) -> &str {
        &self.config.account_sid
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, String> {
        let r = self
            .http
            .get(url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .send()
            .await
            .map_err(|e| format!("Twilio could not be reached: {e}"))?;
        let status = r.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(format!(
                "Twilio refused the credentials ({status}): check ASSENT_TWILIO_ACCOUNT_SID and ASSENT_TWILIO_AUTH_TOKEN"
            ));
        }
        if !status.is_success() {
            return Err(format!("Twilio answered {status}"));
        }
        let body = r
            .bytes()
            .await
            .map_err(|e| format!("Twilio's answer was cut off: {e}"))?;
        serde_json::from_slice::<T>(&body)
            .map_err(|e| format!("Twilio's answer could not be read: {e}"))
    }

    /// The next page's address, only when it is on the same host as the first (the
    /// credentials go nowhere else).
    fn next(&self, meta: Meta) -> Option<String> {
        meta.next_page_url
            .filter(|u| u.starts_with(self.config.messaging_base.trim_end_matches('/')))
    }

    /// The account's number `e164`, or `None` when the account has no such number.
    pub async fn incoming_number(&self, e164: &str) -> Result<Option<IncomingNumber>, String> {
        let mut url = reqwest::Url::parse(&format!(
            "{}/2010-04-01/Accounts/{}/IncomingPhoneNumbers.json",
            self.config.api_base.trim_end_matches('/'),
            self.config.account_sid
        ))
        .map_err(|e| format!("ASSENT_TWILIO_API_BASE is not a URL: {e}"))?;
        url.query_pairs_mut().append_pair("PhoneNumber", e164);
        let page: NumbersPage = self.get(url.as_str()).await?;
        Ok(page
            .incoming_phone_numbers
            .into_iter()
            .find(|n| n.phone_number == e164))
    }

    /// The account's Messaging Services, each with the numbers in its sender pool.
    pub async fn services(&self) -> Result<Vec<MessagingService>, String> {
        let base = self.config.messaging_base.trim_end_matches('/');
        let mut services = Vec::new();
        let mut url = Some(format!("{base}/v1/Services?PageSize={PAGE_SIZE}"));
        for _ in 0..MAX_PAGES {
            let Some(u) = url.take() else { break };
            let page: ServicesPage = self.get(&u).await?;
            services.extend(page.services);
            url = self.next(page.meta);
        }
        for s in &mut services {
            let mut url = Some(format!(
                "{base}/v1/Services/{}/PhoneNumbers?PageSize={PAGE_SIZE}",
                s.sid
            ));
            for _ in 0..MAX_PAGES {
                let Some(u) = url.take() else { break };
                let page: ServiceNumbersPage = self.get(&u).await?;
                s.numbers
                    .extend(page.phone_numbers.into_iter().map(|n| n.phone_number));
                url = self.next(page.meta);
            }
        }
        Ok(services)
    }
}
