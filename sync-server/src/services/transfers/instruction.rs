//! The transactions of holder-signed transfers: what the server hands a
//! wallet to sign ([`unsigned_transaction`]), what it accepts back
//! ([`HolderInstruction::read`]), and the one-time claim keys of email
//! transfers.

use base64::Engine;
use solana_sdk::instruction::Instruction;
use solana_sdk::message::Message;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Keypair;
use solana_sdk::transaction::Transaction;

use crate::adapters::mail::ClaimSecret;
use crate::services::ServiceError;
use crate::services::organizer::ChainContext;

/// An unsigned legacy transaction of `instruction` with `signer` paying, on
/// a fresh blockhash, base64 of its bincode: what a wallet signs.
pub async fn unsigned_transaction(
    ctx: &ChainContext,
    signer: &Pubkey,
    instruction: Instruction,
) -> Result<String, ServiceError> {
    let blockhash = ctx.chain.latest_blockhash().await?;
    let mut transaction = Transaction::new_with_payer(&[instruction], Some(signer));
    transaction.message.recent_blockhash = blockhash;
    let bytes =
        bincode::serialize(&transaction).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A new one-time claim key: the secret is its 32-byte seed, URL-safe
/// base64 (43 characters), which goes into the claim link.
pub(super) fn new_claim_key() -> Result<(ClaimSecret, Keypair), ServiceError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| ServiceError::Internal(format!("no randomness: {e}")))?;
    let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seed);
    let secret = ClaimSecret::new(code).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok((secret, Keypair::new_from_array(seed)))
}

/// The claim keypair a code stands for; `None` when it is not a code at all.
pub(super) fn claim_key_of(code: &str) -> Option<Keypair> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(code.trim())
        .ok()?;
    let seed: [u8; 32] = bytes.try_into().ok()?;
    Some(Keypair::new_from_array(seed))
}

/// The one instruction a holder may send through the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderInstruction {
    Transfer {
        recipient: Pubkey,
    },
    OpenEmailTransfer {
        email_hash: [u8; 32],
        claim_key: Pubkey,
        expires_at: i64,
    },
    CancelEmailTransfer,
}

impl HolderInstruction {
    /// Reads `transaction` as exactly one of the holder's instructions on
    /// ticket `ticket_id` of `event`, by `holder`, who pays the fee: the
    /// message must be the very one the program's client builds for it
    /// (program, discriminator, every account and its flags, the
    /// arguments). Signatures are not checked here.
    pub fn read(
        transaction: &Transaction,
        holder: &Pubkey,
        event: &Pubkey,
        ticket_id: u32,
        standard: ticketing::client::TokenStandard,
    ) -> Result<Self, ServiceError> {
        use anchor_lang::{AnchorDeserialize, Discriminator};
        use ticketing::instruction as ix;
        let refuse = |why: &str| Err(ServiceError::invalid("transaction", why));
        let message = &transaction.message;
        let [compiled] = message.instructions.as_slice() else {
            return refuse("must hold exactly one instruction");
        };
        if message
            .account_keys
            .get(usize::from(compiled.program_id_index))
            != Some(&ticketing::ID)
        {
            return refuse("not an instruction of the ticketing program");
        }
        let account = |i: usize| {
            compiled
                .accounts
                .get(i)
                .and_then(|k| message.account_keys.get(usize::from(*k)))
                .copied()
        };
        let data = compiled.data.as_slice();
        let (kind, expected) = if data.starts_with(ix::TransferTicket::DISCRIMINATOR) {
            let Some(recipient) = account(1) else {
                return refuse("a transfer names its recipient");
            };
            (
                Self::Transfer { recipient },
                ticketing::client::transfer_ticket(holder, &recipient, event, ticket_id, standard),
            )
        } else if data.starts_with(ix::OpenEmailTransfer::DISCRIMINATOR) {
            let mut args = &data[ix::OpenEmailTransfer::DISCRIMINATOR.len()..];
            let Ok(open) = <ix::OpenEmailTransfer as AnchorDeserialize>::deserialize(&mut args)
            else {
                return refuse("unreadable open_email_transfer arguments");
            };
            (
                Self::OpenEmailTransfer {
                    email_hash: open.email_hash,
                    claim_key: open.claim_key,
                    expires_at: open.expires_at,
                },
                ticketing::client::open_email_transfer(
                    holder,
                    event,
                    ticket_id,
                    open.email_hash,
                    &open.claim_key,
                    open.expires_at,
                    standard,
                ),
            )
        } else if data.starts_with(ix::CancelEmailTransfer::DISCRIMINATOR) {
            (
                Self::CancelEmailTransfer,
                ticketing::client::cancel_email_transfer(holder, event, ticket_id, standard),
            )
        } else {
            return refuse(
                "only transfer_ticket, open_email_transfer or cancel_email_transfer are accepted",
            );
        };
        let rebuilt =
            Message::new_with_blockhash(&[expected], Some(holder), &message.recent_blockhash);
        if rebuilt != *message {
            return refuse("not this ticket's instruction by its holder, paid by the holder");
        }
        Ok(kind)
    }
}
