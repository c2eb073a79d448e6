//! The ticket NFT: a mint with 0 decimals and supply 1 whose single token sits frozen in the
//! holder's associated token account. The event PDA is its freeze authority (and metadata update
//! authority), so only this program moves it. The event's [`TokenStandard`] picks the token
//! program: SPL Token (a plain 82-byte mint), or Token-2022 with the metadata pointer and token
//! metadata extensions. Every call here goes to the token program passed in, with the
//! instructions both programs share.

use anchor_lang::prelude::*;
use anchor_lang::solana_program::program::invoke_signed;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::solana_program::system_instruction;
use anchor_spl::associated_token::{self, Create};
use anchor_spl::compat::spl_token_metadata_interface::state::TokenMetadata;
use anchor_spl::token_2022::spl_token_2022::extension::{ExtensionType, StateWithExtensions};
use anchor_spl::token_2022::spl_token_2022::instruction::AuthorityType;
use anchor_spl::token_2022::spl_token_2022::state::{
    Account as TokenAccountState, AccountState, Mint as MintState,
};
use anchor_spl::token_2022::{self, FreezeAccount, MintTo, SetAuthority, ThawAccount};
use anchor_spl::token_interface::{
    MetadataPointerInitialize, TokenMetadataInitialize, metadata_pointer_initialize,
    token_metadata_initialize,
};

use crate::error::TicketingError;
use crate::state::TokenStandard;

/// Creates a program-derived account, also when someone has already sent lamports to its
/// address (ticket and mint addresses are predictable, so a plain `create_account` could be
/// blocked by a 1-lamport transfer).
pub fn create_pda_account<'info>(
    payer: &AccountInfo<'info>,
    target: &AccountInfo<'info>,
    system_program: &AccountInfo<'info>,
    space: usize,
    lamports: u64,
    owner: &Pubkey,
    seeds: &[&[u8]],
) -> Result<()> {
    let current = target.lamports();
    if current == 0 {
        invoke_signed(
            &system_instruction::create_account(
                payer.key,
                target.key,
                lamports,
                u64::try_from(space).map_err(|_| TicketingError::Overflow)?,
                owner,
            ),
            &[payer.clone(), target.clone(), system_program.clone()],
            &[seeds],
        )?;
        return Ok(());
    }
    let shortfall = lamports.saturating_sub(current);
    if shortfall > 0 {
        invoke_signed(
            &system_instruction::transfer(payer.key, target.key, shortfall),
            &[payer.clone(), target.clone(), system_program.clone()],
            &[],
        )?;
    }
    invoke_signed(
        &system_instruction::allocate(
            target.key,
            u64::try_from(space).map_err(|_| TicketingError::Overflow)?,
        ),
        &[target.clone(), system_program.clone()],
        &[seeds],
    )?;
    invoke_signed(
        &system_instruction::assign(target.key, owner),
        &[target.clone(), system_program.clone()],
        &[seeds],
    )?;
    Ok(())
}

/// Accounts that take part in minting one ticket NFT.
pub struct MintAccounts<'a, 'info> {
    pub payer: &'a AccountInfo<'info>,
    /// The event PDA: mint authority (until supply is 1), freeze authority, update authority.
    pub event: &'a AccountInfo<'info>,
    pub recipient: &'a AccountInfo<'info>,
    pub mint: &'a AccountInfo<'info>,
    pub recipient_token: &'a AccountInfo<'info>,
    pub token_program: &'a AccountInfo<'info>,
    pub associated_token_program: &'a AccountInfo<'info>,
    pub system_program: &'a AccountInfo<'info>,
}

/// What wallets show for the ticket.
pub struct TicketMetadata {
    pub name: String,
    pub symbol: String,
    pub uri: String,
}

/// Creates the mint at its PDA, its metadata, the recipient's associated token account, mints
/// the single token, freezes it and removes the mint authority so supply stays 1 forever.
pub fn mint_ticket_nft(
    accounts: &MintAccounts<'_, '_>,
    mint_seeds: &[&[u8]],
    event_seeds: &[&[u8]],
    metadata: TicketMetadata,
) -> Result<()> {
    let token_program_id = *accounts.token_program.key;
    let event_key = *accounts.event.key;
    let signer = &[event_seeds];
    if token_program_id == TokenStandard::SplToken.program_id() {
        create_pda_account(
            accounts.payer,
            accounts.mint,
            accounts.system_program,
            MintState::LEN,
            Rent::get()?.minimum_balance(MintState::LEN),
            &token_program_id,
            mint_seeds,
        )?;
        initialize_mint(accounts, &event_key)?;
    } else {
        require_keys_eq!(
            token_program_id,
            TokenStandard::Token2022Metadata.program_id(),
            TicketingError::WrongTokenProgram
        );
        create_mint_with_metadata(accounts, mint_seeds, event_seeds, metadata)?;
    }
    associated_token::create_idempotent(CpiContext::new(
        *accounts.associated_token_program.key,
        Create {
            payer: accounts.payer.clone(),
            associated_token: accounts.recipient_token.clone(),
            authority: accounts.recipient.clone(),
            mint: accounts.mint.clone(),
            system_program: accounts.system_program.clone(),
            token_program: accounts.token_program.clone(),
        },
    ))?;
    token_2022::mint_to(
        CpiContext::new_with_signer(
            token_program_id,
            MintTo {
                mint: accounts.mint.clone(),
                to: accounts.recipient_token.clone(),
                authority: accounts.event.clone(),
            },
            signer,
        ),
        1,
    )?;
    freeze(
        accounts.token_program,
        accounts.recipient_token,
        accounts.mint,
        accounts.event,
        event_seeds,
    )?;
    token_2022::set_authority(
        CpiContext::new_with_signer(
            token_program_id,
            SetAuthority {
                current_authority: accounts.event.clone(),
                account_or_mint: accounts.mint.clone(),
            },
            signer,
        ),
        AuthorityType::MintTokens,
        None,
    )?;
    Ok(())
}

fn initialize_mint(accounts: &MintAccounts<'_, '_>, event_key: &Pubkey) -> Result<()> {
    token_2022::initialize_mint2(
        CpiContext::new(
            *accounts.token_program.key,
            token_2022::InitializeMint2 {
                mint: accounts.mint.clone(),
            },
        ),
        0,
        event_key,
        Some(event_key),
    )
}

/// The Token-2022 mint with its metadata inside it (metadata pointer to itself).
fn create_mint_with_metadata(
    accounts: &MintAccounts<'_, '_>,
    mint_seeds: &[&[u8]],
    event_seeds: &[&[u8]],
    metadata: TicketMetadata,
) -> Result<()> {
    let token_program_id = *accounts.token_program.key;
    let event_key = *accounts.event.key;
    let mint_key = *accounts.mint.key;
    let base_len =
        ExtensionType::try_calculate_account_len::<MintState>(&[ExtensionType::MetadataPointer])?;
    let metadata_len = TokenMetadata {
        update_authority: Some(event_key).try_into()?,
        mint: mint_key,
        name: metadata.name.clone(),
        symbol: metadata.symbol.clone(),
        uri: metadata.uri.clone(),
        additional_metadata: vec![],
    }
    .tlv_size_of()?;
    let total_len = base_len
        .checked_add(metadata_len)
        .ok_or(TicketingError::Overflow)?;
    // Token-2022 grows the mint for the metadata itself; the lamports must already be there.
    let lamports = Rent::get()?.minimum_balance(total_len);
    create_pda_account(
        accounts.payer,
        accounts.mint,
        accounts.system_program,
        base_len,
        lamports,
        &token_program_id,
        mint_seeds,
    )?;
    metadata_pointer_initialize(
        CpiContext::new(
            token_program_id,
            MetadataPointerInitialize {
                token_program_id: accounts.token_program.clone(),
                mint: accounts.mint.clone(),
            },
        ),
        Some(event_key),
        Some(mint_key),
    )?;
    initialize_mint(accounts, &event_key)?;
    token_metadata_initialize(
        CpiContext::new_with_signer(
            token_program_id,
            TokenMetadataInitialize {
                program_id: accounts.token_program.clone(),
                metadata: accounts.mint.clone(),
                update_authority: accounts.event.clone(),
                mint_authority: accounts.event.clone(),
                mint: accounts.mint.clone(),
            },
            &[event_seeds],
        ),
        metadata.name,
        metadata.symbol,
        metadata.uri,
    )
}

pub fn freeze<'info>(
    token_program: &AccountInfo<'info>,
    token_account: &AccountInfo<'info>,
    mint: &AccountInfo<'info>,
    event: &AccountInfo<'info>,
    event_seeds: &[&[u8]],
) -> Result<()> {
    token_2022::freeze_account(CpiContext::new_with_signer(
        *token_program.key,
        FreezeAccount {
            account: token_account.clone(),
            mint: mint.clone(),
            authority: event.clone(),
        },
        &[event_seeds],
    ))
}

pub fn thaw<'info>(
    token_program: &AccountInfo<'info>,
    token_account: &AccountInfo<'info>,
    mint: &AccountInfo<'info>,
    event: &AccountInfo<'info>,
    event_seeds: &[&[u8]],
) -> Result<()> {
    token_2022::thaw_account(CpiContext::new_with_signer(
        *token_program.key,
        ThawAccount {
            account: token_account.clone(),
            mint: mint.clone(),
            authority: event.clone(),
        },
        &[event_seeds],
    ))
}

/// Whether a token account exists and is frozen (a recipient's account left over from an
/// earlier holding of the same ticket is thawed before it receives the token again).
pub fn is_frozen(token_account: &AccountInfo<'_>) -> Result<bool> {
    if token_account.data_is_empty() {
        return Ok(false);
    }
    let data = token_account.try_borrow_data()?;
    let state = StateWithExtensions::<TokenAccountState>::unpack(&data)?;
    Ok(state.base.state == AccountState::Frozen)
}

/// Accounts that take part in moving a ticket's token to a new holder.
pub struct MoveAccounts<'a, 'info> {
    pub payer: &'a AccountInfo<'info>,
    pub event: &'a AccountInfo<'info>,
    pub mint: &'a AccountInfo<'info>,
    pub from: &'a AccountInfo<'info>,
    /// Owner of `from`, or the event PDA when it acts as the approved delegate.
    pub authority: &'a AccountInfo<'info>,
    pub recipient: &'a AccountInfo<'info>,
    pub to: &'a AccountInfo<'info>,
    pub token_program: &'a AccountInfo<'info>,
    pub associated_token_program: &'a AccountInfo<'info>,
    pub system_program: &'a AccountInfo<'info>,
}

/// Thaw, transfer_checked into the recipient's associated token account (created if needed),
/// freeze. The emptied source stays thawed so its owner can close it and recover its rent.
pub fn move_ticket_token(accounts: &MoveAccounts<'_, '_>, event_seeds: &[&[u8]]) -> Result<()> {
    associated_token::create_idempotent(CpiContext::new(
        *accounts.associated_token_program.key,
        Create {
            payer: accounts.payer.clone(),
            associated_token: accounts.to.clone(),
            authority: accounts.recipient.clone(),
            mint: accounts.mint.clone(),
            system_program: accounts.system_program.clone(),
            token_program: accounts.token_program.clone(),
        },
    ))?;
    thaw(
        accounts.token_program,
        accounts.from,
        accounts.mint,
        accounts.event,
        event_seeds,
    )?;
    if is_frozen(accounts.to)? {
        thaw(
            accounts.token_program,
            accounts.to,
            accounts.mint,
            accounts.event,
            event_seeds,
        )?;
    }
    token_2022::transfer_checked(
        CpiContext::new_with_signer(
            *accounts.token_program.key,
            token_2022::TransferChecked {
                from: accounts.from.clone(),
                mint: accounts.mint.clone(),
                to: accounts.to.clone(),
                authority: accounts.authority.clone(),
            },
            &[event_seeds],
        ),
        1,
        0,
    )?;
    freeze(
        accounts.token_program,
        accounts.to,
        accounts.mint,
        accounts.event,
        event_seeds,
    )
}

/// The associated token account that holds a ticket's token for `owner`, under the token
/// program of the event's standard.
pub fn ticket_token_address(owner: &Pubkey, mint: &Pubkey, token_program: &Pubkey) -> Pubkey {
    anchor_spl::associated_token::get_associated_token_address_with_program_id(
        owner,
        mint,
        token_program,
    )
}
