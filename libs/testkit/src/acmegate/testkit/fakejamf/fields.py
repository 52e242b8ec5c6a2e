"""Field lists of the Jamf Pro API 11.30.1 schema (served by every Jamf Pro instance at
``/api/schema``).

Copied from the ``filter`` and ``sort`` parameter descriptions and the section enums, so the
fake accepts exactly what the real server documents and refuses the rest with its 400s.
"""

from __future__ import annotations

COMPUTER_FILTER_V1_V3 = frozenset(
    """
    general.name udid id general.assetTag general.barcode1 general.barcode2
    general.enrolledViaAutomatedDeviceEnrollment general.lastIpAddress
    general.itunesStoreAccountActive general.jamfBinaryVersion general.lastContactTime
    general.lastEnrolledDate general.lastCloudBackupDate general.reportDate
    general.lastReportedIp general.lastReportedIpV4 general.lastReportedIpV6
    general.managementId general.remoteManagement.managed general.mdmCapable.capable
    general.mdmCertificateExpiration general.platform general.supervised general.userApprovedMdm
    general.declarativeDeviceManagementEnabled general.lastLoggedInUsernameSelfService
    general.lastLoggedInUsernameSelfServiceTimestamp general.lastLoggedInUsernameBinary
    general.lastLoggedInUsernameBinaryTimestamp general.lastLoggedInUsernameMdm
    general.lastLoggedInUsernameMdmTimestamp hardware.bleCapable hardware.macAddress
    hardware.make hardware.model hardware.modelIdentifier hardware.serialNumber
    hardware.supportsIosAppInstalls hardware.appleSilicon operatingSystem.activeDirectoryStatus
    operatingSystem.fileVault2Status operatingSystem.build
    operatingSystem.supplementalBuildVersion operatingSystem.rapidSecurityResponse
    operatingSystem.name operatingSystem.version security.activationLockEnabled
    security.recoveryLockEnabled security.firewallEnabled userAndLocation.buildingId
    userAndLocation.departmentId userAndLocation.email userAndLocation.realname
    userAndLocation.phone userAndLocation.position userAndLocation.room userAndLocation.username
    diskEncryption.fileVault2Enabled purchasing.appleCareId purchasing.lifeExpectancy
    purchasing.purchased purchasing.leased purchasing.vendor purchasing.warrantyDate
    """.split()
)


# v4 replaced general.lastContactTime by lastContact and lastCheckIn (docs/jamf.md §8.3).
COMPUTER_FILTER_V4 = (COMPUTER_FILTER_V1_V3 - {"general.lastContactTime"}) | {
    "general.lastCheckIn",
    "general.lastContact",
}


COMPUTER_SORT_V1_V3 = frozenset(
    """
    general.name udid id general.assetTag general.jamfBinaryVersion general.lastContactTime
    general.lastEnrolledDate general.lastCloudBackupDate general.reportDate
    general.mdmCertificateExpiration general.platform general.lastLoggedInUsernameSelfService
    general.lastLoggedInUsernameSelfServiceTimestamp general.lastLoggedInUsernameBinary
    general.lastLoggedInUsernameBinaryTimestamp general.lastLoggedInUsernameMdm
    general.lastLoggedInUsernameMdmTimestamp hardware.make hardware.model operatingSystem.build
    operatingSystem.supplementalBuildVersion operatingSystem.rapidSecurityResponse
    operatingSystem.name operatingSystem.version userAndLocation.realname
    purchasing.lifeExpectancy purchasing.warrantyDate
    """.split()
)


COMPUTER_SORT_V4 = (COMPUTER_SORT_V1_V3 - {"general.lastContactTime"}) | {
    "general.lastCheckIn",
    "general.lastContact",
}


MOBILE_FILTER = frozenset(
    """
    airPlayPassword appAnalyticsEnabled assetTag availableSpaceMb batteryLevel
    bluetoothLowEnergyCapable bluetoothMacAddress capacityMb declarativeDeviceManagementEnabled
    deviceId deviceLocatorServiceEnabled devicePhoneNumber diagnosticAndUsageReportingEnabled
    displayName doNotDisturbEnabled exchangeDeviceId cloudBackupEnabled osBuild
    osSupplementalBuildVersion osVersion osRapidSecurityResponse ipAddress
    itunesStoreAccountActive mobileDeviceId managementId languages lastContactDate
    lastInventoryUpdateDate locales locationServicesForSelfServiceMobileEnabled lostModeEnabled
    managed model modelIdentifier modelNumber modemFirmwareVersion preferredVoiceNumber
    quotaSize residentUsers serialNumber sharedIpad supervised tethered timeZone udid
    usedSpacePercentage wifiMacAddress building department emailAddress fullName userPhoneNumber
    position room username appleCareId lifeExpectancyYears poNumber purchasePrice
    purchasedOrLeased purchasingAccount purchasingContact vendor activationLockEnabled
    blockEncryptionCapable dataProtection fileEncryptionCapable passcodeCompliant
    passcodeCompliantWithProfile passcodeLockGracePeriodEnforcedSeconds passcodePresent
    carrierSettingsVersion currentCarrierNetwork currentMobileCountryCode
    currentMobileNetworkCode dataRoamingEnabled eid network homeMobileCountryCode
    homeMobileNetworkCode iccid imei imei2 meid personalHotspotEnabled roaming
    lastLoggedInUsernameSelfService lastLoggedInUsernameSelfServiceTimestamp
    lastLoggedInUsernameMdm lastLoggedInUsernameMdmTimestamp groupId groupName
    """.split()
)


MOBILE_SORT = frozenset(
    """
    airPlayPassword appAnalyticsEnabled assetTag availableSpaceMb batteryLevel batteryHealth
    bluetoothLowEnergyCapable bluetoothMacAddress capacityMb lostModeEnabledDate
    declarativeDeviceManagementEnabled deviceId deviceLocatorServiceEnabled devicePhoneNumber
    diagnosticAndUsageReportingEnabled displayName doNotDisturbEnabled
    enrollmentSessionTokenValid exchangeDeviceId cloudBackupEnabled osBuild
    osSupplementalBuildVersion osVersion osRapidSecurityResponse ipAddress
    itunesStoreAccountActive mobileDeviceId managementId languages lastBackupDate
    lastContactDate lastEnrolledDate lastCloudBackupDate lastInventoryUpdateDate locales
    locationServicesForSelfServiceMobileEnabled lostModeEnabled managed mdmProfileExpirationDate
    model modelIdentifier modelNumber modemFirmwareVersion preferredVoiceNumber quotaSize
    residentUsers serialNumber sharedIpad supervised tethered timeZone udid usedSpacePercentage
    wifiMacAddress deviceOwnershipType building department emailAddress fullName userPhoneNumber
    position room username appleCareId leaseExpirationDate lifeExpectancyYears poDate poNumber
    purchasePrice purchasedOrLeased purchasingAccount purchasingContact vendor
    warrantyExpirationDate activationLockEnabled blockEncryptionCapable dataProtection
    fileEncryptionCapable hardwareEncryptionSupported jailbreakStatus passcodeCompliant
    passcodeCompliantWithProfile passcodeLockGracePeriodEnforcedSeconds passcodePresent
    carrierSettingsVersion cellularTechnology currentCarrierNetwork currentMobileCountryCode
    currentMobileNetworkCode dataRoamingEnabled eid network homeMobileCountryCode
    homeMobileNetworkCode iccid imei imei2 meid personalHotspotEnabled voiceRoamingEnabled
    roaming lastLoggedInUsernameSelfService lastLoggedInUsernameSelfServiceTimestamp
    lastLoggedInUsernameMdm lastLoggedInUsernameMdmTimestamp
    """.split()
)


COMPUTER_SECTIONS_V1 = frozenset(
    """
    GENERAL DISK_ENCRYPTION PURCHASING APPLICATIONS STORAGE USER_AND_LOCATION
    CONFIGURATION_PROFILES PRINTERS SERVICES HARDWARE LOCAL_USER_ACCOUNTS CERTIFICATES
    ATTACHMENTS PLUGINS PACKAGE_RECEIPTS FONTS SECURITY OPERATING_SYSTEM LICENSED_SOFTWARE
    IBEACONS SOFTWARE_UPDATES EXTENSION_ATTRIBUTES CONTENT_CACHING GROUP_MEMBERSHIPS
    """.split()
)


COMPUTER_SECTIONS_V2_V4 = frozenset(
    """
    GENERAL DISK_ENCRYPTION PURCHASING APPLICATIONS STORAGE USER_AND_LOCATION
    CONFIGURATION_PROFILES PRINTERS SERVICES HARDWARE LOCAL_USER_ACCOUNTS CERTIFICATES
    ATTACHMENTS PACKAGE_RECEIPTS SECURITY OPERATING_SYSTEM LICENSED_SOFTWARE IBEACONS
    SOFTWARE_UPDATES EXTENSION_ATTRIBUTES CONTENT_CACHING GROUP_MEMBERSHIPS
    """.split()
)


MOBILE_SECTIONS = frozenset(
    """
    GENERAL HARDWARE USER_AND_LOCATION PURCHASING SECURITY APPLICATIONS EBOOKS NETWORK
    SERVICE_SUBSCRIPTIONS CERTIFICATES PROFILES USER_PROFILES PROVISIONING_PROFILES SHARED_USERS
    GROUPS EXTENSION_ATTRIBUTES
    """.split()
)
