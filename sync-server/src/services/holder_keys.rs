//! The holder's approval of a browser key (the delegated holder proof of
//! `docs/holder-proof.md`): for a ticket its wallet holds, the static code
//! the page turns into the rotating one and the exact text the wallet signs
//! to approve the page's session key. The server signs nothing and keeps
//! nothing here: the approval is between the wallet and its phone, and the
//! gates check it offline.

use shared::credential::{CredentialBody, DelegationRequest, DelegationScope};
use shared::{HolderProofPolicy, PublicKeyBytes};

use super::{ServiceError, Services, events, tickets};

/// How long before now an approval starts by default, so a phone whose
/// clock is a few minutes behind the gates' still makes usable proofs.
pub const DEFAULT_BACKDATE_SECS: i64 = 300;
/// The longest an approval may last: a key kept for longer is a key that
/// may be lost with its phone.
pub const MAX_VALIDITY_SECS: i64 = 31 * 86_400;
/// The shortest default approval: even for an event that is ending, the
/// page needs the key for the walk to the gate.
const MIN_DEFAULT_VALIDITY_SECS: i64 = 3600;

/// What a holder asks to approve: the page's session key, for which
/// tickets, and (optionally) from when until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRequest {
    pub session_key: PublicKeyBytes,
    pub scope: DelegationScope,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
}

/// Everything the page needs to have the wallet approve its key and then
/// make rotating codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyApproval {
    /// The ticket's static code (format version 1, no holder proof), whose
    /// bytes start the rotating code.
    pub code: String,
    pub body: CredentialBody,
    pub request: DelegationRequest,
    /// The text the owner's wallet signs (`signMessage`, UTF-8).
    pub message: String,
    /// The event's rule, which says how fresh a proof the gates want.
    pub holder_proof: HolderProofPolicy,
    /// The server's clock, so the page can tell a phone whose clock is off.
    pub now: i64,
}

/// The approval `wallet` is asked to sign for its ticket, refused when the
/// wallet does not hold the ticket or the validity asked for is unusable.
pub async fn approval(
    services: &Services,
    wallet: &PublicKeyBytes,
    event_id: u64,
    ticket_id: u32,
    asked: KeyRequest,
) -> Result<KeyApproval, ServiceError> {
    let ticket = tickets::ticket(services, event_id, ticket_id).await?;
    if ticket.owner != *wallet {
        return Err(ServiceError::Forbidden(
            "only the wallet holding this ticket may approve a key to show it",
        ));
    }
    let event = events::record(services, event_id).await?;
    let now = services.clock.now();
    let entries_end = event
        .ends_at
        .saturating_add(i64::from(event.end_grace_secs));
    let (valid_from, valid_until) =
        validity(now, entries_end, asked.valid_from, asked.valid_until)?;
    let credential = tickets::issued(services, ticket)?.credential;
    let request = DelegationRequest {
        scope: asked.scope,
        session_key: asked.session_key,
        valid_from,
        valid_until,
    };
    Ok(KeyApproval {
        code: credential.encode(),
        message: request.message(&credential.body),
        body: credential.body,
        request,
        holder_proof: event.holder_proof,
        now,
    })
}

/// The approval's validity: what was asked, or by default from a few
/// minutes ago until entries end (at least an hour, at most
/// [`MAX_VALIDITY_SECS`] from now).
fn validity(
    now: i64,
    entries_end: i64,
    from: Option<i64>,
    until: Option<i64>,
) -> Result<(u32, u32), ServiceError> {
    let from = from.unwrap_or(now.saturating_sub(DEFAULT_BACKDATE_SECS));
    let until = until.unwrap_or_else(|| {
        entries_end
            .max(now.saturating_add(MIN_DEFAULT_VALIDITY_SECS))
            .min(from.saturating_add(MAX_VALIDITY_SECS))
    });
    let from_u32 = u32::try_from(from).map_err(|_| {
        ServiceError::invalid("valid_from", "must be Unix seconds from 1970 to 2106")
    })?;
    let until_u32 = u32::try_from(until).map_err(|_| {
        ServiceError::invalid("valid_until", "must be Unix seconds from 1970 to 2106")
    })?;
    if until <= from {
        return Err(ServiceError::invalid(
            "valid_until",
            "must be after valid_from",
        ));
    }
    if until <= now {
        return Err(ServiceError::invalid(
            "valid_until",
            "must be in the future",
        ));
    }
    if until - from > MAX_VALIDITY_SECS {
        return Err(ServiceError::invalid(
            "valid_until",
            format_args!(
                "at most {} days after valid_from",
                MAX_VALIDITY_SECS / 86_400
            ),
        ));
    }
    Ok((from_u32, until_u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_072_000;

    #[test]
    fn by_default_an_approval_lasts_until_entries_end() {
        assert_eq!(
            validity(NOW, NOW + 7200, None, None).unwrap(),
            ((NOW - 300) as u32, (NOW + 7200) as u32)
        );
    }

    #[test]
    fn a_default_approval_lasts_at_least_an_hour_and_at_most_a_month() {
        assert_eq!(
            validity(NOW, NOW + 60, None, None).unwrap().1,
            (NOW + 3600) as u32
        );
        assert_eq!(
            validity(NOW, NOW + 90 * 86_400, None, None).unwrap().1,
            (NOW - 300 + MAX_VALIDITY_SECS) as u32
        );
    }

    #[test]
    fn an_unusable_validity_is_refused_naming_the_field() {
        let field = |r: Result<(u32, u32), ServiceError>| match r {
            Err(ServiceError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(validity(NOW, NOW, Some(-1), None)), "valid_from");
        assert_eq!(
            field(validity(NOW, NOW, Some(NOW), Some(NOW - 5))),
            "valid_until"
        );
        assert_eq!(
            field(validity(NOW, NOW, Some(NOW - 60), Some(NOW - 1))),
            "valid_until"
        );
        assert_eq!(
            field(validity(NOW, NOW, Some(NOW), Some(NOW + 40 * 86_400))),
            "valid_until"
        );
        assert_eq!(
            field(validity(NOW, NOW, None, Some(1 << 40))),
            "valid_until"
        );
    }
}
