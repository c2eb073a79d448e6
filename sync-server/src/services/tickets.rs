//! Tickets as their holders and the NFT world see them: a ticket with its
//! signed QR credential, the QR code as an image, and the NFT's public
//! metadata and card picture (which never carry the credential).

use shared::PublicKeyBytes;
use shared::wire::{CachedEvent, CachedTicket};

use super::organizer::{self, IssuedTicket};
use super::{ServiceError, Services};

/// The symbol of every ticket NFT.
const NFT_SYMBOL: &str = "TIX";

/// The ticket, or not found naming it.
pub async fn ticket(
    services: &Services,
    event_id: u64,
    ticket_id: u32,
) -> Result<CachedTicket, ServiceError> {
    services
        .store
        .ticket(event_id, ticket_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no ticket {ticket_id} in event {event_id}")))
}

/// `ticket` with the credential the server issues for it.
pub fn issued(services: &Services, ticket: CachedTicket) -> Result<IssuedTicket, ServiceError> {
    Ok(IssuedTicket {
        credential: organizer::credential_for(services, &ticket)?,
        ticket,
    })
}

/// The wallet's tickets (at most a thousand) with their credentials.
pub async fn of_holder(
    services: &Services,
    wallet: &PublicKeyBytes,
) -> Result<Vec<IssuedTicket>, ServiceError> {
    services
        .store
        .tickets_of_owner(&wallet.to_base58())
        .await?
        .into_iter()
        .map(|t| issued(services, t))
        .collect()
}

fn qr_code(code: &str) -> Result<qrcode::QrCode, ServiceError> {
    qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ServiceError::Internal(format!("QR: {e}")))
}

/// `code` as a QR code PNG, the way gates' cameras read it best (error
/// correction M, 6 pixels a module, a quiet zone).
pub fn qr_png(code: &str) -> Result<Vec<u8>, ServiceError> {
    let image: image::GrayImage = qr_code(code)?
        .render::<image::Luma<u8>>()
        .module_dimensions(6, 6)
        .build();
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| ServiceError::Internal(format!("PNG: {e}")))?;
    Ok(png)
}

/// `code` as a QR code SVG of at least 256 by 256.
pub fn qr_svg(code: &str) -> Result<String, ServiceError> {
    Ok(qr_code(code)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(256, 256)
        .build())
}

/// The ticket and its event, or not found.
async fn ticket_and_event(
    services: &Services,
    event_id: u64,
    ticket_id: u32,
) -> Result<(CachedTicket, CachedEvent), ServiceError> {
    let ticket = ticket(services, event_id, ticket_id).await?;
    let event = services
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    Ok((ticket, event))
}

fn tier_name(event: &CachedEvent, tier: u8) -> Option<String> {
    event
        .tiers
        .iter()
        .find(|t| t.index == tier)
        .map(|t| t.name.clone())
}

/// The NFT's metadata JSON that wallets and marketplaces read (name,
/// symbol, description, image, external_url, attributes).
pub async fn nft_metadata(
    services: &Services,
    event_id: u64,
    ticket_id: u32,
) -> Result<serde_json::Value, ServiceError> {
    let (ticket, event) = ticket_and_event(services, event_id, ticket_id).await?;
    let details = services.store.event_record(event_id).await?;
    let tier = tier_name(&event, ticket.tier).unwrap_or_else(|| format!("tier {}", ticket.tier));
    let base = services.config.api.public_url.trim_end_matches('/');
    let mut attributes = vec![
        serde_json::json!({ "trait_type": "Event", "value": event.name }),
        serde_json::json!({ "trait_type": "Tier", "value": tier }),
        serde_json::json!({ "trait_type": "Ticket", "value": ticket_id }),
        serde_json::json!({ "trait_type": "Status", "value": format!("{:?}", ticket.status) }),
    ];
    if let Some(d) = &details {
        attributes.push(serde_json::json!({ "trait_type": "Venue", "value": d.venue }));
        attributes.push(serde_json::json!({ "trait_type": "Starts", "display_type": "date", "value": d.starts_at }));
    }
    Ok(serde_json::json!({
        "name": format!("{} #{ticket_id}", event.name),
        "symbol": NFT_SYMBOL,
        "description": details.map(|d| d.description).unwrap_or_default(),
        "image": format!("{base}/m/{event_id}/{ticket_id}/image.svg"),
        "external_url": format!("{base}/api/events/{event_id}"),
        "attributes": attributes,
    }))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The NFT's picture: a ticket card (SVG) with the event, tier and number.
pub async fn card_svg(
    services: &Services,
    event_id: u64,
    ticket_id: u32,
) -> Result<String, ServiceError> {
    let (ticket, event) = ticket_and_event(services, event_id, ticket_id).await?;
    let tier = tier_name(&event, ticket.tier).unwrap_or_default();
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"300\" viewBox=\"0 0 600 300\">\
<rect width=\"600\" height=\"300\" rx=\"24\" fill=\"#14213d\"/>\
<text x=\"40\" y=\"90\" font-family=\"sans-serif\" font-size=\"36\" fill=\"#fca311\">{}</text>\
<text x=\"40\" y=\"160\" font-family=\"sans-serif\" font-size=\"28\" fill=\"#e5e5e5\">{}</text>\
<text x=\"40\" y=\"240\" font-family=\"monospace\" font-size=\"44\" fill=\"#ffffff\">#{ticket_id}</text></svg>",
        xml_escape(&event.name),
        xml_escape(&tier),
    ))
}
